"""A Glance-compatible image service: Image API v2, registry, and management commands."""

import sys

# eventlet is installed only because oslo.messaging depends on oslo.service; this service runs
# plain threads (gunicorn's gthread workers) and never eventlet. futurist, which glance_store's
# file driver imports, imports eventlet whenever it can: 11 MiB more in every process (measured:
# 71 vs 60 MiB for glance-api's modules), against issue 17's memory target. Marked absent, every
# `import eventlet` raises ImportError, which futurist and oslo.utils handle; code that needs
# oslo.service (oslo.messaging) selects its threading backend first.
sys.modules.setdefault("eventlet", None)
