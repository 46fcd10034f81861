"""A cache hit decides who sees an image exactly as the database does: every viewer of
test_db_visibility's images, through the database and through a filled record cache."""

from __future__ import annotations

import pytest

from glance_service import exceptions
from glance_service.registry.record_cache import CachedDataAPI, RecordCache
from tests.unit.db.test_db_visibility import world  # noqa: F401  (the images and members)
from tests.unit.test_record_cache import Clock, FakeMemcache


class Counting:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def image_get(self, *args, **kwargs):
        self.calls += 1
        return self.inner.image_get(*args, **kwargs)


def outcome(data, ctx, image_id):
    try:
        return data.image_get(ctx, image_id)["id"]
    except exceptions.ImageNotFound as exc:
        return ("not found", exc.message)


@pytest.mark.parametrize("viewer", ["admin", "alice", "bob", "carol"])
def test_a_hit_sees_what_the_database_sees(dbapi, world, request, admin, viewer):  # noqa: F811
    ctx = request.getfixturevalue(viewer)
    cache = RecordCache(FakeMemcache(Clock()), ttl=300, clock=Clock())
    registry = CachedDataAPI(dbapi, cache, read=False, owner=True)
    counting = Counting(registry)
    api = CachedDataAPI(counting, cache, read=True, owner=False)
    for image_id in world.values():
        try:
            registry.image_get(admin, image_id)  # fills, whoever reads
        except exceptions.ImageNotFound:
            pass  # deleted: never cached
    filled = counting.calls
    for name, image_id in world.items():
        assert outcome(api, ctx, image_id) == outcome(dbapi, ctx, image_id), name
    # Only the deleted image went to the database.
    assert counting.calls - filled == 1
