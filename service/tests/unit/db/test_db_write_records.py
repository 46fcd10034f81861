"""A write's answer is the record as stored: what the next read returns, on both backends.

The create, the upload's start (image_update) and its end (image_activate) build the record
they return from what they wrote instead of reading it back (and an update from the row it
locked); these tests hold that shortcut to the read's result, value for value and type for type.
"""

from __future__ import annotations

import sqlalchemy as sa

from glance_service.db.models import Base


def _same_as_read(dbapi, ctx, record: dict) -> None:
    read = dbapi.image_get(ctx, record["id"])
    assert record == read
    assert {k: type(v) for k, v in record.items()} == {k: type(v) for k, v in read.items()}
    assert list(record) == list(read)


def test_create_answers_what_a_read_returns(dbapi, alice):
    image = dbapi.image_create(
        alice,
        {
            "id": "6a4c1e0a-94a7-4a4d-9c4e-6c1c1f1f1f1f",
            "name": "naïve 🐧 image",
            "disk_format": "qcow2",
            "container_format": "bare",
            "size": 0,
            "min_ram": 512,
            "protected": True,
            "created_at": "2026-11-22T10:04:05.123456Z",
            "properties": {"os_distro": "debian", "count": 3, "empty": "", "nothing": None},
            "tags": ["b", "a", "b"],
        },
    )
    assert image["created_at"] == "2026-11-22T10:04:05.123456"
    assert image["properties"] == {"os_distro": "debian", "count": "3", "empty": "", "nothing": None}
    assert image["tags"] == ["a", "b"]
    _same_as_read(dbapi, alice, image)


def test_create_with_defaults_answers_what_a_read_returns(dbapi, alice):
    _same_as_read(dbapi, alice, dbapi.image_create(alice, {}))


def test_update_answers_what_a_read_returns(dbapi, alice):
    image = dbapi.image_create(alice, {"name": "a", "properties": {"x": "1", "y": "2"}, "tags": ["t1"]})
    dbapi.image_location_add(alice, image["id"], "file:///somewhere", {"store": "file"})
    changed = dbapi.image_update(
        alice,
        image["id"],
        {"name": "b", "min_disk": 3, "os_hidden": True, "properties": {"x": "one", "z": 9}, "tags": ["t2"]},
        purge_props=True,
    )
    assert changed["name"] == "b" and changed["properties"] == {"x": "one", "z": "9"}
    assert changed["tags"] == ["t2"] and len(changed["locations"]) == 1
    _same_as_read(dbapi, alice, changed)
    # A status move from a given state, adding a property: the upload's start.
    saving = dbapi.image_update(
        alice, image["id"], {"status": "saving", "properties": {"marker": "h"}}, from_state="queued"
    )
    assert saving["status"] == "saving" and saving["properties"]["marker"] == "h"
    _same_as_read(dbapi, alice, saving)


def test_update_sees_a_change_committed_before_it(dbapi, alice):
    """The record an update answers with includes every committed column, not only its own."""
    image = dbapi.image_create(alice, {"name": "a"})
    with dbapi.db.writer() as s:
        images = Base.metadata.tables["images"]
        s.execute(sa.update(images).where(images.c.id == image["id"]).values(checksum="c" * 32))
    changed = dbapi.image_update(alice, image["id"], {"name": "b"})
    assert changed["checksum"] == "c" * 32 and changed["name"] == "b"


def test_activate_leaves_what_a_read_returns(dbapi, alice):
    image = dbapi.image_create(alice, {"name": "a", "status": "saving"})
    location = dbapi.image_activate(
        alice,
        image["id"],
        "file:///data/x",
        {"store": "file"},
        {"status": "active", "size": 1024, "checksum": "a" * 32, "os_hash_algo": "sha512",
         "os_hash_value": "b" * 128, "virtual_size": 1024},
    )  # fmt: skip
    read = dbapi.image_get(alice, image["id"])
    assert read["locations"] == [location]
    assert location["url"] == "file:///data/x" and location["metadata"] == {"store": "file"}
    assert read["status"] == "active" and read["size"] == 1024 and read["virtual_size"] == 1024
