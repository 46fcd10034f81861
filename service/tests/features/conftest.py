"""Issue 18's features against real servers (RabbitMQ, Ceph, Keystone, upstream Glance).

One file per feature; each starts what it needs through ``tests/fixtures``. They run in CI with
the rest of ``service/tests`` and on their own with ``make test-features``.
"""
