"""The record cache's memcached client across a memcached restart (a real memcached).

Each glance-api thread keeps its connection to memcached. After a restart that connection is
closed by the old process: used as it is, the first command on it fails with a reset and
python-memcached marks the server dead for ``memcached_dead_retry`` seconds in that thread
(the registry then answers every read of that thread for 5 s; the two-node test saw it). The
client notices the closed connection before using it and opens a new one instead."""

from __future__ import annotations

from oslo_config import cfg

from glance_service.registry import record_cache
from tests.fixtures.memcached import start_memcached

KEYS = [record_cache.key(f"{i:036d}") for i in range(20)]


def _client(address: str):
    conf = cfg.ConfigOpts()
    record_cache.register_opts(conf)
    conf([])
    conf.set_override("memcached_servers", [address], group=record_cache.GROUP)
    return record_cache.memcache_client(conf)


def test_a_connection_closed_by_a_memcached_restart_is_replaced_not_marked_dead():
    server = start_memcached()
    port = server.port
    try:
        client = _client(server.address)
        for k in KEYS:
            assert client.set(k, b"before")
            assert client.get(k) == b"before"
        (host,) = client.servers
        assert host.socket is not None  # kept alive between commands
        server.stop()
        server = start_memcached(port=port)
        writer = _client(server.address)
        for k in KEYS:
            assert writer.set(k, b"after")
        # Every get on the old client: answered by the new memcached, the server never
        # marked dead (a dead mark would make the following gets misses for 5 s).
        assert [client.get(k) for k in KEYS] == [b"after"] * len(KEYS)
        assert host.deaduntil == 0
    finally:
        server.stop()
