"""A shared read cache of image records on memcached, coherent across API nodes.

What is cached: per image, the record ``image_get`` returns and the image's live members
(``{project: status}``: what visibility needs), as JSON under ``glance/image/v1/<id>`` (the
``v1`` is the entry format: a change of format changes the prefix, so old entries are never
read). Deleted images are never cached; negative answers neither.

Who writes memcached: only the owner of the database, glance-registry (or glance-api itself
with ``[DEFAULT] data_api = database``), through ``CachedDataAPI(owner=True)``:

* after every WRITE operation of ``db.interface.OPERATIONS`` that names an ``image_id``
  (whether it succeeded or raised: it may have changed something), a *tombstone* is ``set``
  on the image's key, expiring in ``TOMBSTONE_SECONDS``;
* after ``image_get`` read the database, the entry is written with ``add`` (never ``set``:
  a tombstone or a newer entry wins), and only if at most ``FILL_GUARD`` seconds passed since
  the read started; likewise after ``image_create`` with the record it wrote (no members yet),
  so that the upload that follows a create reads the record without a registry call.

Why no reader brings back a record older than a write (the race): a write W commits at
``tc`` and sets its tombstone at ``ts > tc``. A reader R starts its database read at ``t0``.
If ``t0 > tc``, R read W's result. Otherwise R may have read the old data, and it fills at
``tf``, at most ``FILL_GUARD`` (2 s) plus the client's socket timeout (at most 1 s) after
``t0``, so before ``ts + 3 s``. If ``tf < ts``, W's ``set`` replaces R's entry. If
``tf > ts``, W's tombstone is still there (it lives at least ``TOMBSTONE_SECONDS - 1`` = 4 s:
memcached counts whole seconds) and R's ``add`` fails. So once W returned, every node's
next read is W's result or a miss.

Who reads: glance-api (``CachedDataAPI(read=True)`` around its data API): ``image_get``
looks the key up first; an entry decides visibility for the caller locally with the same
rule as the database (``db.visibility.can_see``; not visible raises ``ImageNotFound`` like
the database path); a miss, a tombstone or any memcached trouble goes to the data API (the
registry, which fills). Memcached down costs one failed connection, then nothing for
``memcached_dead_retry`` seconds: the client marks the server dead and every call goes
straight to the registry. Tombstones alone are always tried (a write during an outage costs
one failed connection, at most ``memcached_socket_timeout``).

Limits: a registry that cannot reach memcached while API nodes can leaves entries as they
were until ``record_ttl`` (and so may a memcached restart in the 3 s between a racing read
and its fill); a database restored from a backup needs memcached flushed.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

from oslo_config import cfg

from glance_service import exceptions
from glance_service.common import json_bytes
from glance_service.common.idle_socket import closed_by_peer
from glance_service.common.registrar import registrar
from glance_service.context import RequestContext
from glance_service.db import visibility
from glance_service.db.interface import OPERATIONS, WRITE, DataAPI

LOG = logging.getLogger(__name__)

GROUP = "metadata_cache"
# duplicates: oslo.config declarations look alike in every module (options are declared
# where they are read, in oslo's one shape); what they share is the library's form.
cache_opts = [
    cfg.ListOpt(
        "memcached_servers",
        default=[],
        help="memcached servers (host:port) holding a shared cache of image records: "
        "GET /v2/images/{id} is then answered by glance-api without a registry call while the "
        "record is unchanged. Set the same list on every glance-api and glance-registry. "
        "Empty: no cache.",
    ),
    cfg.IntOpt(
        "record_ttl",
        default=300,
        min=1,
        help="Seconds an image record stays in the cache. Every write through the registry "
        "invalidates the record at once; this bounds only what a registry that cannot reach "
        "memcached while the API nodes can may leave behind.",
    ),
    cfg.FloatOpt(
        "memcached_socket_timeout",
        default=0.25,
        min=0.01,
        max=1.0,
        help="Seconds to wait for memcached (connecting or answering) before going to the registry instead.",
    ),
    cfg.IntOpt(
        "memcached_dead_retry",
        default=5,
        min=0,
        help="Seconds a memcached server that failed is left alone (every call goes straight "
        "to the registry) before it is tried again.",
    ),
]

register_opts = registrar((GROUP, cache_opts))


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    return [(GROUP, cache_opts)]


PREFIX = "glance/image/v1/"
# A reader fills only if its database read started at most this long ago...
FILL_GUARD = 2.0
# ... and a tombstone outlives it (memcached counts whole seconds: it may expire up to one
# second early; the socket timeout, at most 1 s, may delay a fill): see the module docstring.
TOMBSTONE_SECONDS = 5
TOMBSTONE = b"-"
# Ids the database could find are 36 characters long; only safe ones become keys (anything
# else is never cached and goes to the data API, which answers as always).
_CACHEABLE_ID = re.compile(r"[0-9A-Za-z._-]{36}")

# The writes that may change an image's record or members: every WRITE naming an image_id.
IMAGE_WRITES = tuple(name for name, op in OPERATIONS.items() if op.kind == WRITE and "image_id" in op.names)


def key(image_id: Any) -> str | None:
    """The image's key, or None when it is not cacheable."""
    if isinstance(image_id, str) and _CACHEABLE_ID.fullmatch(image_id):
        return PREFIX + image_id
    return None


class Memcache(Protocol):
    def get(self, key: str) -> Any: ...
    def add(self, key: str, val: Any, time: int = 0) -> Any: ...
    def set(self, key: str, val: Any, time: int = 0) -> Any: ...


class _NoUnpickling(pickle.Unpickler):
    """python-memcached unpickles values flagged as pickles: ours are bytes, so such a value
    is not ours and is refused (a miss), never unpickled."""

    def load(self):
        raise pickle.UnpicklingError("pickled values are refused")


def memcache_client(conf: cfg.ConfigOpts, dead_retry: int | None = None) -> Memcache:
    """python-memcached's client: one connection per thread (a ``threading.local``), a dead
    server skipped for ``memcached_dead_retry`` seconds. pymemcache was measured at the same
    CPU per get (about 15 us, the value JSON-decoded separately), so no second client."""
    import memcache

    class OwnServerOnly(memcache.Client):
        """A key lives on its own server only. python-memcached moves a key whose server is
        down to another one (``_get_server`` rehashes): readers would fill that other server
        during the outage, and the tombstones of later writes, sent to the first server once it
        is back, would miss those entries, which the next outage would serve. Here a key whose
        server is down is a miss (the registry answers) and its tombstone a logged failure."""

        def _get_server(self, key):
            if isinstance(key, tuple):
                serverhash, key = key
            else:
                serverhash = memcache.serverHashFunction(key)
            if not self.buckets:
                return None, None
            server = self.buckets[serverhash % len(self.buckets)]
            if server.socket is not None and closed_by_peer(server.socket):
                # memcached restarted (or dropped the idle connection): a new connection,
                # not a dead mark. Used as it is, the command would fail with a reset and
                # the client would skip memcached in this thread for dead_retry seconds.
                server.close_socket()
            return (server, key) if server.connect() else (None, None)

    group = conf[GROUP]
    return OwnServerOnly(
        list(group.memcached_servers),
        socket_timeout=group.memcached_socket_timeout,
        dead_retry=group.memcached_dead_retry if dead_retry is None else dead_retry,
        unpickler=_NoUnpickling,
        check_keys=False,  # key() makes them
    )


class RecordCache:
    """Entries, tombstones and the fill guard over a memcached client; never raises."""

    def __init__(
        self,
        client: Memcache,
        ttl: int,
        clock: Callable[[], float] = time.monotonic,
        tombstones: Memcache | None = None,
    ):
        self.client = client
        self.ttl = ttl
        self.clock = clock
        # Tombstones go through a client that never skips a server it saw fail: the client's
        # dead marks are per thread, so a thread that saw memcached fail would otherwise skip
        # the tombstone while another thread's fill of the old record went through.
        self.tombstones = tombstones or client

    def lookup(self, image_id: str) -> tuple[dict, dict[str, str]] | None:
        """(record, members) of a cached image, or None: a miss, a tombstone, or an error."""
        k = key(image_id)
        if k is None:
            return None
        try:
            raw = self.client.get(k)
        except Exception as exc:  # the client's own errors are caught inside it; anything else
            LOG.debug("record cache: get %s failed: %r", k, exc)
            return None
        if not raw or raw == TOMBSTONE or not isinstance(raw, bytes):
            return None
        try:
            entry = json_bytes.loads(raw)
            record, members = entry["r"], entry["m"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(record, dict) or not isinstance(members, dict) or record.get("deleted"):
            return None
        return record, members

    def fill(self, image_id: str, record: dict, members: dict[str, str], started: float) -> bool:
        """``add`` the entry unless the read began more than ``FILL_GUARD`` seconds ago."""
        k = key(image_id)
        if k is None or record.get("deleted") or self.clock() - started > FILL_GUARD:
            return False
        raw = json.dumps({"r": record, "m": members}, separators=(",", ":")).encode()
        try:
            return bool(self.client.add(k, raw, self.ttl))
        except Exception as exc:
            LOG.debug("record cache: add %s failed: %r", k, exc)
            return False

    def invalidate(self, image_id: Any) -> None:
        k = key(image_id)
        if k is None:
            return
        try:
            done = self.tombstones.set(k, TOMBSTONE, TOMBSTONE_SECONDS)
        except Exception as exc:
            done = False
            LOG.debug("record cache: set %s failed: %r", k, exc)
        if not done:
            LOG.warning(
                "record cache: could not invalidate image %s in memcached; API nodes may serve "
                "its previous record for up to [metadata_cache] record_ttl seconds",
                image_id,
            )


def visible(ctx: RequestContext, image_id: str, record: dict, members: dict[str, str]) -> dict:
    """The record if ``ctx`` may see it, else ``ImageNotFound`` as the database raises it."""
    if visibility.can_see(ctx, record.get("owner"), record.get("visibility"), lambda: ctx.owner in members):
        return record
    raise exceptions.ImageNotFound(f"No image found with ID {image_id}")


class CachedDataAPI:
    """A data API with the record cache around it; every other attribute is the inner one's.

    ``read``: ``image_get`` looks in the cache first (glance-api). ``owner``: this process
    owns the database (glance-registry, or glance-api in direct mode): it fills the cache
    after reads and sets tombstones after writes."""

    def __init__(self, inner: DataAPI, cache: RecordCache, read: bool, owner: bool):
        self._inner = inner
        self._cache = cache
        self._read = read
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def image_get(self, ctx: RequestContext, image_id: str, include_deleted: bool = False) -> dict:
        if include_deleted:
            return self._inner.image_get(ctx, image_id, include_deleted=True)
        if self._read:
            found = self._cache.lookup(image_id)
            if found is not None:
                return visible(ctx, image_id, *found)
        started = self._cache.clock()
        record = self._inner.image_get(ctx, image_id, include_deleted=False)
        if self._owner:
            try:
                members = self._inner.image_member_find(RequestContext.admin(ctx.request_id), image_id)
            except Exception as exc:  # deleted meanwhile, the database failing: no fill, same answer
                LOG.debug("record cache: no fill of %s: %r", image_id, exc)
            else:
                live = {m["member"]: m["status"] for m in members if not m.get("deleted")}
                self._cache.fill(image_id, record, live, started)
        return record

    def image_create(self, ctx: RequestContext, values: dict) -> dict:
        """The owner fills the cache with the record it just wrote (a new image has no
        members): the upload that usually follows reads it here instead of through one more
        registry call. Safe as a read's fill: the record is the committed state, and a write
        naming the new id that commits after it sets its tombstone after this ``add`` (which it
        replaces) or before (then the ``add`` fails)."""
        started = self._cache.clock()
        record = self._inner.image_create(ctx, values)
        if self._owner and isinstance(record, dict):
            self._cache.fill(record.get("id"), record, {}, started)
        return record

    def _write(self, name: str, ctx: RequestContext, image_id: str, kwargs: dict) -> Any:
        try:
            return getattr(self._inner, name)(ctx, **kwargs)
        finally:
            if self._owner:
                self._cache.invalidate(image_id)


# One method per image write, with the declared signature (``Operation.define``).
for _name in IMAGE_WRITES:
    _method = OPERATIONS[_name].define("return self._write({name}, ctx, image_id, {kwargs})")
    _method.__module__, _method.__qualname__ = __name__, f"CachedDataAPI.{_name}"
    setattr(CachedDataAPI, _name, _method)
del _name, _method


def wrap(conf: cfg.ConfigOpts, data: DataAPI, read: bool, owner: bool) -> DataAPI:
    """``data`` with the record cache when ``[metadata_cache] memcached_servers`` is set."""
    register_opts(conf)
    if not conf[GROUP].memcached_servers:
        return data
    tombstones = memcache_client(conf, dead_retry=0) if owner else None
    cache = RecordCache(memcache_client(conf), conf[GROUP].record_ttl, tombstones=tombstones)
    return CachedDataAPI(data, cache, read=read, owner=owner)
