"""The record cache's own logic (registry/record_cache.py): keys, tombstones against fills,
the fill guard, and the reader's visibility, over a dict-backed memcached and a fake clock.
The same code against real processes and a real memcached: tests/functional/
test_record_cache_two_nodes.py."""

from __future__ import annotations

import inspect
import io
import pickle

import pytest
from oslo_config import cfg

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.db.interface import OPERATIONS
from glance_service.registry import record_cache
from glance_service.registry.record_cache import CachedDataAPI, RecordCache

IMAGE = "0f3d5a3e-7a4b-4d1e-9c39-4a0b1f6b2c11"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeMemcache:
    """get/add/set with memcached's semantics (add only if absent), expiring on ``clock``."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.data: dict[str, tuple[bytes, float]] = {}
        self.calls: list[str] = []
        self.down = False

    def _live(self, key):
        item = self.data.get(key)
        if item is None or item[1] <= self.clock():
            self.data.pop(key, None)
            return None
        return item[0]

    def get(self, key):
        self.calls.append("get")
        return None if self.down else self._live(key)

    def add(self, key, val, time=0):
        self.calls.append("add")
        if self.down or self._live(key) is not None:
            return 0
        self.data[key] = (val, self.clock() + time)
        return 1

    def set(self, key, val, time=0):
        self.calls.append("set")
        if self.down:
            return 0
        self.data[key] = (val, self.clock() + time)
        return 1


class FakeData:
    """A data API holding one image and its members; counts calls; ``during_read`` runs
    inside ``image_get`` (a write racing the read)."""

    def __init__(self, record: dict, members: dict[str, str] | None = None):
        self.record = record
        self.members = members or {}
        self.calls: list[str] = []
        self.during_read = None

    def image_get(self, ctx, image_id, include_deleted=False):
        self.calls.append("image_get")
        if image_id != self.record["id"] or (self.record["deleted"] and not include_deleted):
            raise exceptions.ImageNotFound(f"No image found with ID {image_id}")
        snapshot = dict(self.record)
        if self.during_read is not None:
            self.during_read()
        return snapshot

    def image_member_find(self, ctx, image_id, member=None):
        self.calls.append("image_member_find")
        assert ctx.is_admin
        return [{"member": m, "status": s, "deleted": False} for m, s in self.members.items()]

    def image_update(self, ctx, image_id, values, purge_props=False, from_state=None):
        self.calls.append("image_update")
        if values.get("fail"):
            raise exceptions.ImageStatusConflict("no")
        self.record.update(values)
        return dict(self.record)

    def image_create(self, ctx, values):
        self.calls.append("image_create")
        if values.get("fail"):
            raise exceptions.Duplicate("taken")
        self.record = {**image(), **values}
        return dict(self.record)

    def image_member_create(self, ctx, image_id, member):
        self.calls.append("image_member_create")
        self.members[member] = "pending"
        return {"member": member, "status": "pending"}

    def image_member_delete(self, ctx, image_id, member):
        self.calls.append("image_member_delete")
        self.members.pop(member)

    def ping(self, ctx):
        return {"ok": True}


def ctx(project: str | None, admin: bool = False) -> RequestContext:
    return RequestContext(project_id=project, roles=["admin"] if admin else ["member"], is_admin=admin)


def image(**extra) -> dict:
    return {"id": IMAGE, "name": "x", "owner": "alpha", "visibility": "shared", "deleted": False, **extra}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mc(clock) -> FakeMemcache:
    return FakeMemcache(clock)


@pytest.fixture
def cache(mc, clock) -> RecordCache:
    return RecordCache(mc, ttl=300, clock=clock)


def nodes(data: FakeData, cache: RecordCache) -> tuple[CachedDataAPI, CachedDataAPI]:
    """(registry, api): the owner that fills and invalidates, and a reader in front of it."""
    registry = CachedDataAPI(data, cache, read=False, owner=True)
    return registry, CachedDataAPI(registry, cache, read=True, owner=False)


# -- keys and what invalidates ------------------------------------------------------------------
def test_key_has_a_format_version_and_only_cacheable_ids():
    assert record_cache.key(IMAGE) == "glance/image/v1/" + IMAGE
    for bad in (IMAGE[:-1], IMAGE + "0", IMAGE[:-1] + " ", IMAGE[:-1] + "\n", None, 7, ""):
        assert record_cache.key(bad) is None


def test_every_declared_image_write_invalidates_and_nothing_else():
    writes = set(record_cache.IMAGE_WRITES)
    assert {"image_update", "image_destroy", "image_member_create", "image_member_update",
            "image_member_delete", "image_tag_create", "image_location_delete", "image_activate",
            "image_pending_delete", "image_restore", "image_scrub_claim",
            "image_set_property_atomic"} <= writes  # fmt: skip
    for name, op in OPERATIONS.items():
        assert (name in writes) == (op.kind == "write" and "image_id" in op.names), name
        if name in writes:
            wrapped = inspect.signature(getattr(CachedDataAPI, name))
            assert list(wrapped.parameters) == ["self", "ctx", *op.names], name
    assert "image_get" not in writes and "image_create" not in writes and "task_update" not in writes


# -- tombstones and the fill guard ---------------------------------------------------------------
def test_a_fill_never_replaces_a_tombstone(cache, clock):
    cache.invalidate(IMAGE)
    assert not cache.fill(IMAGE, image(), {}, started=clock())
    assert cache.lookup(IMAGE) is None
    clock.now += record_cache.TOMBSTONE_SECONDS
    assert cache.fill(IMAGE, image(), {}, started=clock())
    assert cache.lookup(IMAGE) == (image(), {})


def test_a_write_replaces_an_entry(cache, clock):
    assert cache.fill(IMAGE, image(), {}, started=clock())
    cache.invalidate(IMAGE)
    assert cache.lookup(IMAGE) is None


def test_a_read_older_than_the_guard_does_not_fill(cache, clock):
    started = clock()
    clock.now += record_cache.FILL_GUARD + 0.1
    assert not cache.fill(IMAGE, image(), {}, started)
    assert cache.lookup(IMAGE) is None


def test_the_tombstone_outlives_the_guard_and_the_socket_timeout():
    # memcached may expire a key up to 1 s early; a fill may arrive a socket timeout late.
    assert record_cache.TOMBSTONE_SECONDS - 1 > record_cache.FILL_GUARD + 1.0
    timeout = next(o for o in record_cache.cache_opts if o.name == "memcached_socket_timeout")
    assert timeout.type.max <= 1.0


def test_a_reader_that_read_before_a_write_cannot_bring_the_old_record_back(mc, cache, clock):
    data = FakeData(image(name="old"))
    registry, api = nodes(data, cache)

    def racing_write():
        # The write commits and invalidates while the reader holds the old record.
        registry.image_update(ctx("alpha"), IMAGE, {"name": "new"})

    data.during_read = racing_write
    assert api.image_get(ctx("alpha"), IMAGE)["name"] == "old"  # what it read, returned once
    data.during_read = None
    assert api.image_get(ctx("alpha"), IMAGE)["name"] == "new"
    # The racing reader's fill lost to the tombstone, and the tombstone lasts a few seconds.
    assert mc.data[record_cache.key(IMAGE)][0] == record_cache.TOMBSTONE


def test_a_failed_write_invalidates_too(cache, clock):
    data = FakeData(image())
    registry, api = nodes(data, cache)
    api.image_get(ctx("alpha"), IMAGE)
    assert cache.lookup(IMAGE) is not None
    with pytest.raises(exceptions.ImageStatusConflict):
        api.image_update(ctx("alpha"), IMAGE, {"fail": True})
    assert cache.lookup(IMAGE) is None


# -- reading --------------------------------------------------------------------------------------
def test_a_hit_makes_no_data_api_call(cache, clock):
    data = FakeData(image(visibility="public"))
    _registry, api = nodes(data, cache)
    assert api.image_get(ctx("alpha"), IMAGE)["id"] == IMAGE
    assert data.calls == ["image_get", "image_member_find"]
    data.calls.clear()
    for viewer in (ctx("alpha"), ctx("gamma"), ctx(None), ctx("x", admin=True)):
        assert api.image_get(viewer, IMAGE)["name"] == "x"
    assert data.calls == []
    # include_deleted is never served from the cache
    api.image_get(ctx("alpha"), IMAGE, include_deleted=True)
    assert data.calls == ["image_get"]


@pytest.mark.parametrize(
    ("visibility", "members", "viewer", "seen"),
    [
        ("shared", {"beta": "pending"}, ctx("beta"), True),
        ("shared", {"beta": "rejected"}, ctx("beta"), True),
        ("shared", {"beta": "accepted"}, ctx("gamma"), False),
        ("shared", {}, ctx("alpha"), True),
        ("shared", {}, ctx(None), False),
        ("private", {"beta": "accepted"}, ctx("beta"), False),
        ("private", {}, ctx("alpha"), True),
        ("private", {}, ctx("gamma", admin=True), True),
        ("community", {}, ctx("gamma"), True),
        ("public", {}, ctx(None), True),
    ],
)
def test_a_hit_decides_visibility_like_the_database(cache, visibility, members, viewer, seen):
    data = FakeData(image(visibility=visibility), members)
    _registry, api = nodes(data, cache)
    api.image_get(ctx("alpha"), IMAGE)  # the owner's read fills
    data.calls.clear()
    if seen:
        assert api.image_get(viewer, IMAGE)["id"] == IMAGE
    else:
        with pytest.raises(exceptions.ImageNotFound, match=f"No image found with ID {IMAGE}"):
            api.image_get(viewer, IMAGE)
    assert data.calls == []


def test_member_changes_are_seen_at_once(cache, clock):
    data = FakeData(image(visibility="shared"))
    _registry, api = nodes(data, cache)
    api.image_get(ctx("alpha"), IMAGE)
    with pytest.raises(exceptions.ImageNotFound):
        api.image_get(ctx("beta"), IMAGE)
    api.image_member_create(ctx("alpha"), IMAGE, "beta")
    clock.now += record_cache.TOMBSTONE_SECONDS  # the tombstone expired: beta's read fills
    assert api.image_get(ctx("beta"), IMAGE)["id"] == IMAGE
    assert api.image_get(ctx("beta"), IMAGE)["id"] == IMAGE  # from the cache
    assert cache.lookup(IMAGE)[1] == {"beta": "pending"}
    api.image_member_delete(ctx("alpha"), IMAGE, "beta")
    assert cache.lookup(IMAGE) is None
    clock.now += record_cache.TOMBSTONE_SECONDS
    api.image_get(ctx("alpha"), IMAGE)
    assert cache.lookup(IMAGE)[1] == {}
    with pytest.raises(exceptions.ImageNotFound):
        api.image_get(ctx("beta"), IMAGE)


def test_memcached_down_means_the_data_api(mc, cache):
    data = FakeData(image(visibility="public"))
    _registry, api = nodes(data, cache)
    api.image_get(ctx("alpha"), IMAGE)
    mc.down = True
    data.calls.clear()
    assert api.image_get(ctx("alpha"), IMAGE)["id"] == IMAGE
    assert data.calls == ["image_get", "image_member_find"]
    api.image_update(ctx("alpha"), IMAGE, {"name": "y"})  # the tombstone is lost: logged
    mc.down = False
    assert mc.data[record_cache.key(IMAGE)][0] != record_cache.TOMBSTONE  # the documented limit


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b'{"r": 1, "m": {}}', b'{"r": {"deleted": true}, "m": {}}', "text"]
)
def test_what_is_not_an_entry_is_a_miss(mc, cache, raw):
    mc.data[record_cache.key(IMAGE)] = (raw, 10**9)
    assert cache.lookup(IMAGE) is None


def test_a_client_that_raises_is_a_miss(cache, mc):
    def boom(*args, **kwargs):
        raise ValueError("Unknown flags on get: 8")

    mc.get = mc.add = mc.set = boom
    assert cache.lookup(IMAGE) is None
    assert not cache.fill(IMAGE, image(), {}, cache.clock())
    cache.invalidate(IMAGE)


def test_pickled_values_are_never_unpickled():
    with pytest.raises(pickle.UnpicklingError):
        record_cache._NoUnpickling(io.BytesIO(pickle.dumps({"r": 1}))).load()


def test_a_failing_member_read_skips_the_fill_not_the_answer(cache):
    data = FakeData(image())

    def fails(ctx, image_id, member=None):
        raise exceptions.ImageNotFound("deleted meanwhile")

    data.image_member_find = fails
    registry, _api = nodes(data, cache)
    assert registry.image_get(ctx("alpha"), IMAGE)["id"] == IMAGE
    assert cache.lookup(IMAGE) is None


# -- a create fills ----------------------------------------------------------------------------
def test_a_create_fills_so_the_uploads_read_is_a_hit(mc, cache):
    """The registry knows the new record (no members yet): the upload that follows reads it
    from the cache, not through a registry call (issue 17: one call fewer per create)."""
    data = FakeData(image(name="old"))
    registry, api = nodes(data, cache)
    created = api.image_create(ctx("alpha"), {"name": "new"})
    assert data.calls == ["image_create"]
    assert api.image_get(ctx("alpha"), IMAGE) == created
    assert data.calls == ["image_create"]  # a hit
    # Visibility from the entry: no members, so another project does not see a shared image.
    with pytest.raises(exceptions.ImageNotFound):
        api.image_get(ctx("beta"), IMAGE)


def test_a_create_never_replaces_a_tombstone_and_a_write_replaces_its_fill(mc, cache, clock):
    data = FakeData(image())
    registry, api = nodes(data, cache)
    cache.invalidate(IMAGE)  # a write naming the id raced the create
    registry.image_create(ctx("alpha"), {"name": "new"})
    assert mc.data[record_cache.key(IMAGE)][0] == record_cache.TOMBSTONE
    clock.now += record_cache.TOMBSTONE_SECONDS
    registry.image_create(ctx("alpha"), {"name": "new"})
    assert cache.lookup(IMAGE) is not None
    registry.image_update(ctx("alpha"), IMAGE, {"name": "newer"})
    assert cache.lookup(IMAGE) is None
    assert api.image_get(ctx("alpha"), IMAGE)["name"] == "newer"


def test_a_failed_create_fills_nothing_and_a_reader_never_fills_on_create(mc, cache):
    data = FakeData(image())
    registry, api = nodes(data, cache)
    with pytest.raises(exceptions.Duplicate):
        api.image_create(ctx("alpha"), {"fail": True})
    assert record_cache.key(IMAGE) not in mc.data
    reader_only = CachedDataAPI(data, cache, read=True, owner=False)
    reader_only.image_create(ctx("alpha"), {"name": "new"})
    assert record_cache.key(IMAGE) not in mc.data


def test_other_attributes_are_the_inner_ones(cache):
    data = FakeData(image())
    api = CachedDataAPI(data, cache, read=True, owner=False)
    assert api.ping(ctx("alpha")) == {"ok": True}


# -- wiring -------------------------------------------------------------------------------------
def _conf(servers: list[str], data_api: str = "registry") -> cfg.ConfigOpts:
    from glance_service.api import wiring

    conf = cfg.ConfigOpts()
    wiring.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("data_api", data_api)
    conf.set_override("memcached_servers", servers, group="metadata_cache")
    return conf


def test_off_by_default():
    conf = _conf([])
    assert conf.metadata_cache.memcached_servers == []
    assert conf.metadata_cache.record_ttl == 300
    from glance_service.api import wiring
    from glance_service.registry.client import RegistryClient

    assert type(wiring.build_data_api(conf)) is RegistryClient


def test_tombstones_never_skip_a_server_marked_dead():
    """python-memcached skips a server for dead_retry seconds after a failure, per thread: a
    tombstone must still be tried (another thread may have filled the old record)."""
    data = record_cache.wrap(_conf(["127.0.0.1:1"], "database"), FakeData(image()), read=True, owner=True)
    assert data._cache.tombstones.servers[0].dead_retry == 0
    assert data._cache.client.servers[0].dead_retry == 5


def test_the_api_in_registry_mode_reads_only():
    from glance_service.api import wiring

    data = wiring.build_data_api(_conf(["127.0.0.1:1"]))
    assert isinstance(data, CachedDataAPI) and data._read and not data._owner


def test_a_key_whose_server_is_down_stays_a_miss_never_moves_to_another_server():
    """python-memcached rehashes a key to another server when its own is down. Readers would
    then fill that other server during the outage and writers' tombstones (sent to the first
    server once it is back) would miss those entries: stale records on the next outage. So a
    key only ever lives on its own server."""
    conf = cfg.ConfigOpts()
    record_cache.register_opts(conf)
    conf([])
    conf.set_override("memcached_servers", ["127.0.0.1:1", "127.0.0.1:2"], group="metadata_cache")
    client = record_cache.memcache_client(conf)
    up, down = client.servers
    up.connect = lambda: 1
    down.connect = lambda: 0
    keys = [record_cache.key(f"{i:036d}").encode() for i in range(40)]
    placed = [client._get_server(k)[0] for k in keys]
    assert up in placed and None in placed, "both servers should own some of 40 keys"
    assert down not in placed
    # The same keys with both servers up: each key's server is the one above or the dead one.
    down.connect = lambda: 1
    for k, server in zip(keys, placed, strict=True):
        assert client._get_server(k)[0] is (server or down)
