"""Create, CAS update, soft delete, properties, tags, locations, members, maintenance calls."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from glance_service import exceptions

RECORD_KEYS = {
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
    "properties",
    "tags",
    "locations",
}


def test_create_defaults_and_record_shape(dbapi, alice):
    image = dbapi.image_create(alice, {"name": "cirros"})
    assert set(image) == RECORD_KEYS
    assert len(image["id"]) == 36
    assert image["status"] == "queued" and image["visibility"] == "shared"
    assert image["protected"] is False and image["os_hidden"] is False and image["deleted"] is False
    assert image["min_disk"] == 0 and image["min_ram"] == 0
    assert image["owner"] == "alpha"
    assert image["properties"] == {} and image["tags"] == [] and image["locations"] == []
    assert len(image["created_at"]) == len("2026-11-22T10:04:05.123456")
    assert dbapi.image_get(alice, image["id"]) == image


def test_create_with_everything(dbapi, alice):
    image_id = str(uuid.uuid4())
    image = dbapi.image_create(
        alice,
        {
            "id": image_id,
            "name": "ünïcode 名前",
            "visibility": "private",
            "protected": True,
            "disk_format": "qcow2",
            "container_format": "bare",
            "min_disk": 2,
            "min_ram": 512,
            "size": 5 * 1024**4,
            "properties": {"os_distro": "ubuntu", "long": "x" * 65535},
            "tags": ["b", "a", "b"],
        },
    )
    assert image["id"] == image_id and image["name"] == "ünïcode 名前"
    assert image["size"] == 5 * 1024**4 and image["protected"] is True
    assert image["properties"]["long"] == "x" * 65535
    assert image["tags"] == ["a", "b"]


def test_duplicate_id_even_when_deleted(dbapi, alice, bob):
    image = dbapi.image_create(alice, {"name": "one"})
    with pytest.raises(exceptions.Duplicate):
        dbapi.image_create(bob, {"id": image["id"], "name": "two"})
    dbapi.image_destroy(alice, image["id"])
    with pytest.raises(exceptions.Duplicate):
        dbapi.image_create(alice, {"id": image["id"], "name": "three"})


def test_unknown_attribute_is_refused(dbapi, alice):
    with pytest.raises(exceptions.BadRequest):
        dbapi.image_create(alice, {"name": "x", "colour": "blue"})
    image = dbapi.image_create(alice, {"name": "x"})
    with pytest.raises(exceptions.BadRequest):
        dbapi.image_update(alice, image["id"], {"deleted": True})


@pytest.mark.parametrize(
    "values",
    [
        {"name": "n" * 256},
        {"properties": {"p": "é" * 40000}},
        {"properties": {"p" * 256: "v"}},
        {"tags": ["t" * 256]},
        {"disk_format": "f" * 21},
        {"size": "12"},
        {"min_ram": True},
        {"protected": "yes"},
    ],
)
def test_too_long_values_are_bad_requests_on_every_backend(dbapi, alice, values):
    with pytest.raises(exceptions.BadRequest):
        dbapi.image_create(alice, {"name": "x", **values} if "name" not in values else values)
    assert dbapi.image_get_all(alice) == []


def test_update_cannot_null_required_columns(dbapi, alice):
    image = dbapi.image_create(alice, {"name": "x", "protected": None, "min_ram": None})
    assert image["protected"] is False and image["min_ram"] == 0
    for values in ({"status": None}, {"protected": None}, {"min_disk": None}, {"visibility": None}):
        with pytest.raises(exceptions.BadRequest):
            dbapi.image_update(alice, image["id"], values)


def test_update_columns_moves_updated_at(dbapi, alice):
    image = dbapi.image_create(alice, {"name": "x"})
    time.sleep(0.002)
    updated = dbapi.image_update(alice, image["id"], {"name": "y", "min_ram": 64})
    assert updated["name"] == "y" and updated["min_ram"] == 64
    assert updated["updated_at"] > image["updated_at"] and updated["created_at"] == image["created_at"]
    time.sleep(0.002)
    again = dbapi.image_update(alice, image["id"], {})
    assert again["updated_at"] > updated["updated_at"]


def test_cas_update(dbapi, alice):
    image = dbapi.image_create(alice, {"name": "x"})
    saved = dbapi.image_update(alice, image["id"], {"status": "saving"}, from_state="queued")
    assert saved["status"] == "saving"
    with pytest.raises(exceptions.ImageStatusConflict):
        dbapi.image_update(alice, image["id"], {"status": "saving", "name": "lost"}, from_state="queued")
    assert dbapi.image_get(alice, image["id"])["name"] == "x"


def test_cas_conflict_rolls_back_properties_and_tags(dbapi, alice):
    image = dbapi.image_create(
        alice, {"name": "x", "status": "active", "properties": {"a": "1"}, "tags": ["t"]}
    )
    with pytest.raises(exceptions.ImageStatusConflict):
        dbapi.image_update(
            alice,
            image["id"],
            {"status": "saving", "properties": {"b": "2"}, "tags": []},
            True,
            from_state="queued",
        )
    after = dbapi.image_get(alice, image["id"])
    assert after["properties"] == {"a": "1"} and after["tags"] == ["t"] and after["status"] == "active"


def test_cas_race_has_one_winner(dbapi, alice):
    images = [dbapi.image_create(alice, {"name": f"r{i}"})["id"] for i in range(5)]
    for image_id in images:
        results = []
        barrier = threading.Barrier(4)

        def attempt(image_id=image_id, results=results, barrier=barrier):
            barrier.wait()
            try:
                dbapi.image_update(alice, image_id, {"status": "saving"}, from_state="queued")
                results.append("won")
            except exceptions.ImageStatusConflict:
                results.append("conflict")

        threads = [threading.Thread(target=attempt) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["conflict", "conflict", "conflict", "won"]


def test_properties_upsert_and_purge(dbapi, alice):
    image = dbapi.image_create(alice, {"name": "x", "properties": {"a": "1", "b": "2"}})
    image_id = image["id"]
    assert dbapi.image_update(alice, image_id, {"properties": {"b": "3", "c": "4"}})["properties"] == {
        "a": "1",
        "b": "3",
        "c": "4",
    }
    purged = dbapi.image_update(alice, image_id, {"properties": {"c": "4"}}, purge_props=True)
    assert purged["properties"] == {"c": "4"}
    # A purged property may come back (its old row is reused under the unique constraint).
    assert dbapi.image_update(alice, image_id, {"properties": {"a": "again"}})["properties"] == {
        "a": "again",
        "c": "4",
    }
    assert dbapi.image_update(alice, image_id, {}, purge_props=True)["properties"] == {}


def test_properties_untouched_without_purge(dbapi, alice):
    image = dbapi.image_create(alice, {"name": "x", "properties": {"a": "1"}})
    assert dbapi.image_update(alice, image["id"], {"name": "y"})["properties"] == {"a": "1"}


def test_tags_replace_and_single_ops(dbapi, alice):
    image_id = dbapi.image_create(alice, {"name": "x", "tags": ["a", "b"]})["id"]
    assert dbapi.image_update(alice, image_id, {"tags": ["b", "c"]})["tags"] == ["b", "c"]
    dbapi.image_tag_create(alice, image_id, "d")
    dbapi.image_tag_create(alice, image_id, "d")
    assert dbapi.image_get(alice, image_id)["tags"] == ["b", "c", "d"]
    dbapi.image_tag_delete(alice, image_id, "b")
    with pytest.raises(exceptions.TagNotFound):
        dbapi.image_tag_delete(alice, image_id, "b")
    dbapi.image_tag_create(alice, image_id, "b")
    assert dbapi.image_get(alice, image_id)["tags"] == ["b", "c", "d"]
    assert dbapi.image_update(alice, image_id, {"tags": []})["tags"] == []


def test_destroy_returns_record_before_and_hides(dbapi, alice, admin):
    image = dbapi.image_create(alice, {"name": "x", "properties": {"a": "1"}, "tags": ["t"]})
    dbapi.image_location_add(alice, image["id"], "file:///var/lib/glance/images/x")
    dbapi.image_member_create(alice, image["id"], "beta")
    before = dbapi.image_destroy(alice, image["id"])
    assert before["status"] == "queued" and before["deleted"] is False
    assert before["locations"][0]["url"] == "file:///var/lib/glance/images/x"
    assert before["properties"] == {"a": "1"} and before["tags"] == ["t"]
    with pytest.raises(exceptions.ImageNotFound):
        dbapi.image_get(admin, image["id"])
    assert dbapi.image_get_all(admin) == []
    with pytest.raises(exceptions.ImageNotFound):
        dbapi.image_destroy(alice, image["id"])
    gone = dbapi.image_get(admin, image["id"], include_deleted=True)
    assert gone["status"] == "deleted" and gone["properties"] == {} and gone["locations"] == []


def test_locations(dbapi, alice):
    image_id = dbapi.image_create(alice, {"name": "x"})["id"]
    first = dbapi.image_location_add(alice, image_id, "file:///a", {"store": "fast"})
    second = dbapi.image_location_add(alice, image_id, "rbd://b", status="pending_delete")
    assert first["metadata"] == {"store": "fast"} and first["status"] == "active"
    assert [loc["url"] for loc in dbapi.image_get(alice, image_id)["locations"]] == ["file:///a", "rbd://b"]
    changed = dbapi.image_location_update(
        alice, image_id, second["id"], {"metadata": {"k": 1}, "status": "active"}
    )
    assert changed == {"id": second["id"], "url": "rbd://b", "metadata": {"k": 1}, "status": "active"}
    dbapi.image_location_delete(alice, image_id, first["id"])
    assert [loc["url"] for loc in dbapi.image_get(alice, image_id)["locations"]] == ["rbd://b"]
    with pytest.raises(exceptions.LocationNotFound):
        dbapi.image_location_delete(alice, image_id, first["id"])
    with pytest.raises(exceptions.LocationNotFound):
        dbapi.image_location_update(alice, image_id, 999999, {"status": "active"})
    with pytest.raises(exceptions.BadRequest):
        dbapi.image_location_add(alice, image_id, "file:///c", status="weird")


def test_activate_records_the_location_and_the_state_together(dbapi, alice, bob):
    image_id = dbapi.image_create(alice, {"name": "x", "status": "saving", "visibility": "private"})["id"]
    done = {
        "status": "active",
        "size": 3,
        "checksum": "c" * 32,
        "os_hash_algo": "sha512",
        "os_hash_value": "h",
    }
    with pytest.raises(exceptions.ImageNotFound):
        dbapi.image_activate(bob, image_id, "file:///x", {}, done)
    loc = dbapi.image_activate(alice, image_id, "file:///x", {"store": "fast"}, done)
    image = dbapi.image_get(alice, image_id)
    assert (image["status"], image["size"], image["os_hash_value"]) == ("active", 3, "h")
    assert image["locations"] == [loc] and loc["metadata"] == {"store": "fast"} and loc["status"] == "active"
    # Not 'saving' any more: neither the state nor a second location changes.
    with pytest.raises(exceptions.ImageStatusConflict):
        dbapi.image_activate(alice, image_id, "file:///y", {}, dict(done, size=9))
    again = dbapi.image_get(alice, image_id)
    assert again["size"] == 3 and [x["url"] for x in again["locations"]] == ["file:///x"]
    with pytest.raises(exceptions.BadRequest):
        dbapi.image_activate(
            alice, image_id, "file:///z", {}, {"properties": {"a": "b"}}, from_state="active"
        )


def _statements(dbapi, call) -> list[str]:
    seen: list[str] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.lstrip().split()[0].upper())

    sa.event.listen(dbapi.db.engine, "before_cursor_execute", grab)
    try:
        call()
    finally:
        sa.event.remove(dbapi.db.engine, "before_cursor_execute", grab)
    return seen


@pytest.mark.parametrize("caller", ["alice", "admin"])
def test_the_owner_activates_without_reading_the_row_first(dbapi, alice, admin, caller):
    """The owner's (or an admin's) activation is the UPDATE and the INSERT of the location: the
    visibility check is in the UPDATE, no SELECT before it."""
    ctx = {"alice": alice, "admin": admin}[caller]
    image_id = dbapi.image_create(alice, {"name": "x", "status": "saving", "visibility": "private"})["id"]
    done = {"status": "active", "size": 3}
    seen = _statements(dbapi, lambda: dbapi.image_activate(ctx, image_id, "file:///x", {}, done))
    assert [s for s in seen if s != "BEGIN"] == ["UPDATE", "INSERT"]
    assert dbapi.image_get(alice, image_id)["status"] == "active"


def test_an_update_reads_the_children_once(dbapi, alice):
    """The upload's start: the locked row, then the properties (deleted ones too), tags and
    locations in one query, then the writes; the record is built from them, not read again."""
    image = dbapi.image_create(alice, {"name": "x", "properties": {"gone": "1"}, "tags": ["t"]})
    dbapi.image_update(alice, image["id"], {}, purge_props=True)  # "gone" is a deleted row now
    dbapi.image_location_add(alice, image["id"], "file:///a", {"k": [1]})
    changed = {}

    def start():
        changed.update(
            dbapi.image_update(
                alice,
                image["id"],
                {"status": "saving", "properties": {"os_glance_upload": "h", "gone": "2"}},
                from_state="queued",
            )
        )

    seen = _statements(dbapi, start)
    assert [s for s in seen if s != "BEGIN"] == ["SELECT", "SELECT", "UPDATE", "UPDATE", "INSERT"]
    assert changed["properties"] == {"os_glance_upload": "h", "gone": "2"}
    assert changed["tags"] == ["t"] and changed["locations"][0]["metadata"] == {"k": [1]}
    assert changed == dbapi.image_get(alice, image["id"])


def test_a_member_activates_a_shared_image_and_a_stranger_cannot(dbapi, alice, bob):
    """A shared image is seen through a membership: the activation reads the row as before."""
    done = {"status": "active", "size": 3}
    image_id = dbapi.image_create(alice, {"name": "x", "status": "saving", "visibility": "shared"})["id"]
    with pytest.raises(exceptions.ImageNotFound):
        dbapi.image_activate(bob, image_id, "file:///x", {}, done)
    dbapi.image_member_create(alice, image_id, "beta")
    with pytest.raises(exceptions.ImageStatusConflict):
        dbapi.image_activate(bob, image_id, "file:///x", {}, done, from_state="queued")
    loc = dbapi.image_activate(bob, image_id, "file:///x", {}, done)
    image = dbapi.image_get(alice, image_id)
    assert image["status"] == "active" and image["locations"] == [loc]
    # Public and ownerless images are seen by everyone: no membership needed.
    for values in ({"visibility": "public"}, {"owner": None}):
        other = dbapi.image_create(alice, {"name": "y", "status": "saving", **values})["id"]
        dbapi.image_activate(bob, other, "file:///y", {}, done)
        assert dbapi.image_get(bob, other)["status"] == "active"


def test_create_with_properties_and_tags_in_one_go(dbapi, alice):
    image = dbapi.image_create(
        alice, {"name": "x", "properties": {"a": "1", "b": None}, "tags": ["t2", "t1"]}
    )
    assert image["properties"] == {"a": "1", "b": None} and image["tags"] == ["t1", "t2"]
    assert dbapi.image_get(alice, image["id"])["properties"] == {"a": "1", "b": None}


def test_members(dbapi, alice, bob):
    image_id = dbapi.image_create(alice, {"name": "x", "visibility": "shared"})["id"]
    member = dbapi.image_member_create(alice, image_id, "beta")
    assert member["status"] == "pending" and member["member"] == "beta" and member["image_id"] == image_id
    assert set(member) == {"image_id", "member", "status", "can_share", "created_at", "updated_at", "deleted"}
    with pytest.raises(exceptions.Duplicate):
        dbapi.image_member_create(alice, image_id, "beta")
    assert dbapi.image_member_update(bob, image_id, "beta", "accepted")["status"] == "accepted"
    with pytest.raises(exceptions.BadRequest):
        dbapi.image_member_update(bob, image_id, "beta", "maybe")
    with pytest.raises(exceptions.MemberNotFound):
        dbapi.image_member_update(alice, image_id, "gamma", "accepted")
    dbapi.image_member_delete(alice, image_id, "beta")
    with pytest.raises(exceptions.MemberNotFound):
        dbapi.image_member_delete(alice, image_id, "beta")
    assert dbapi.image_member_find(alice, image_id) == []
    again = dbapi.image_member_create(alice, image_id, "beta")
    assert again["status"] == "pending"
    assert [m["member"] for m in dbapi.image_member_find(alice, image_id)] == ["beta"]


def test_get_by_status(dbapi, alice, admin):
    saving = dbapi.image_create(alice, {"name": "s", "status": "saving"})
    dbapi.image_create(alice, {"name": "q"})
    with pytest.raises(exceptions.Forbidden):
        dbapi.image_get_by_status(alice, "saving")
    assert [i["id"] for i in dbapi.image_get_by_status(admin, "saving")] == [saving["id"]]
    assert dbapi.image_get_by_status(admin, "saving", updated_before=saving["updated_at"]) == []
    assert len(dbapi.image_get_by_status(admin, "saving", updated_before="2999-01-01T00:00:00Z")) == 1


def test_ping(dbapi, admin):
    assert dbapi.ping(admin)["database"] == "ok"


def test_concurrent_writers_do_not_fail(dbapi, alice):
    """Several threads creating and updating at once: no 'database is locked', no deadlock error."""
    errors: list[BaseException] = []
    shared = dbapi.image_create(alice, {"name": "shared", "visibility": "shared"})["id"]

    def work(n):
        try:
            for i in range(8):
                image = dbapi.image_create(
                    alice, {"name": f"t{n}-{i}", "properties": {"k": str(i)}, "tags": ["c"]}
                )
                dbapi.image_update(alice, image["id"], {"properties": {"k2": "v"}, "tags": ["c", "d"]})
                dbapi.image_tag_create(alice, shared, f"tag-{n}-{i}")
        except BaseException as exc:  # collected and asserted in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(dbapi.image_get_all(alice, {"tags": ["d"]})) == 48
    assert len(dbapi.image_get(alice, shared)["tags"]) == 48
