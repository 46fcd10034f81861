"""Tasks and the atomic import lock in the DatabaseAPI (SQLite and MariaDB)."""

from __future__ import annotations

import pytest

from glance_service import exceptions


def _image(dbapi, ctx):
    return dbapi.image_create(ctx, {"name": "i"})["id"]


def test_task_round_trip_and_visibility(dbapi, alice, bob, admin):
    image_id = _image(dbapi, alice)
    task = dbapi.task_create(
        alice,
        {
            "type": "api_image_import",
            "image_id": image_id,
            "request_id": "req-1",
            "user_id": alice.user_id,
            "input": {"import_req": {"method": {"name": "glance-direct"}}},
        },
    )
    assert task["status"] == "pending"
    assert task["owner"] == "alpha"
    assert task["input"]["import_req"]["method"]["name"] == "glance-direct"
    assert task["result"] is None and task["message"] == ""
    assert dbapi.task_get(admin, task["id"])["request_id"] == "req-1"
    with pytest.raises(exceptions.TaskNotFound):
        dbapi.task_get(bob, task["id"])
    assert [t["id"] for t in dbapi.task_get_by_image(alice, image_id)] == [task["id"]]
    assert dbapi.task_get_by_image(bob, image_id) == []


def test_task_update_from_status_is_atomic(dbapi, alice):
    task = dbapi.task_create(alice, {"type": "import"})
    done = dbapi.task_update(alice, task["id"], {"status": "processing"}, from_status="pending")
    assert done["status"] == "processing"
    with pytest.raises(exceptions.Conflict):
        dbapi.task_update(alice, task["id"], {"status": "processing"}, from_status="pending")
    final = dbapi.task_update(alice, task["id"], {"status": "failure", "message": "boom", "result": {"a": 1}})
    assert (final["status"], final["message"], final["result"]) == ("failure", "boom", {"a": 1})
    with pytest.raises(exceptions.BadRequest):
        dbapi.task_update(alice, task["id"], {"status": "bogus"})


def test_task_list_filters_sort_marker(dbapi, alice, bob, admin):
    ids = [dbapi.task_create(alice, {"type": "import"})["id"] for _ in range(3)]
    dbapi.task_create(bob, {"type": "import"})
    mine = dbapi.task_get_all(alice, sort_key="created_at", sort_dir="asc")
    assert [t["id"] for t in mine] == ids
    assert len(dbapi.task_get_all(admin)) == 4
    page = dbapi.task_get_all(alice, marker=ids[0], sort_dir="asc", limit=1)
    assert [t["id"] for t in page] == [ids[1]]
    assert dbapi.task_get_all(alice, filters={"status": "success"}) == []
    with pytest.raises(exceptions.InvalidMarker):
        dbapi.task_get_all(bob, marker=ids[0])


def test_property_lock_is_exclusive_and_released_by_value(dbapi, alice):
    image_id = _image(dbapi, alice)
    dbapi.image_set_property_atomic(alice, image_id, "os_glance_import_task", "t1")
    with pytest.raises(exceptions.Duplicate):
        dbapi.image_set_property_atomic(alice, image_id, "os_glance_import_task", "t2")
    with pytest.raises(exceptions.NotFound):
        dbapi.image_delete_property_atomic(alice, image_id, "os_glance_import_task", "t2")
    dbapi.image_delete_property_atomic(alice, image_id, "os_glance_import_task", "t1")
    assert "os_glance_import_task" not in dbapi.image_get(alice, image_id)["properties"]
    # a released lock can be taken again (the soft-deleted row is revived)
    dbapi.image_set_property_atomic(alice, image_id, "os_glance_import_task", "t2")
    assert dbapi.image_get(alice, image_id)["properties"]["os_glance_import_task"] == "t2"
