"""``glance-manage db purge``: old soft-deleted rows go, children first; live and pending work stays."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from glance_service.db import purge
from glance_service.db.models import Image, ImageLocation, ImageMember, ImageProperty, ImageTag

GLANCE_MANAGE = os.path.join(os.path.dirname(sys.executable), "glance-manage")
TABLES = {t.__tablename__: t.__table__ for t in (Image, ImageLocation, ImageMember, ImageProperty, ImageTag)}


def _age(dbapi, days: int) -> None:
    """Move every deletion ``days`` into the past."""
    past = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(days=days)
    with dbapi.db.writer() as s:
        for table in TABLES.values():
            s.execute(table.update().where(table.c.deleted == sa.true()).values(deleted_at=past))


def _count(dbapi, name: str) -> int:
    with dbapi.db.reader() as s:
        return s.execute(sa.select(sa.func.count()).select_from(TABLES[name])).scalar()


def _deleted_image(dbapi, ctx, props: int = 2) -> dict:
    image = dbapi.image_create(ctx, {"properties": {f"p{i}": "v" for i in range(props)}, "tags": ["a", "b"]})
    dbapi.image_location_add(ctx, image["id"], f"file:///nowhere/{image['id']}")
    dbapi.image_member_create(ctx, image["id"], "beta")
    dbapi.image_destroy(ctx, image["id"])
    return image


def test_purge_removes_old_children_and_keeps_images_rows(dbapi, alice, synced_url):
    _deleted_image(dbapi, alice)
    live = dbapi.image_create(alice, {"properties": {"keep": "me"}, "tags": ["x"]})
    dbapi.image_tag_create(alice, live["id"], "y")
    dbapi.image_tag_delete(alice, live["id"], "y")
    # too recent: nothing goes
    assert purge.purge(synced_url, age_in_days=1, max_rows=-1) == {}
    _age(dbapi, 3)
    counts = purge.purge(synced_url, age_in_days=1, max_rows=-1)
    assert counts == {"image_properties": 2, "image_tags": 3, "image_members": 1, "image_locations": 1}
    assert _count(dbapi, "images") == 2
    assert dbapi.image_get(alice, live["id"])["tags"] == ["x"]
    images = purge.purge(synced_url, age_in_days=1, max_rows=-1, images=True)
    assert images == {"images": 1}
    assert _count(dbapi, "images") == 1


def test_max_rows_limits_each_table(dbapi, alice, synced_url):
    for _ in range(3):
        _deleted_image(dbapi, alice, props=2)
    _age(dbapi, 2)
    counts = purge.purge(synced_url, age_in_days=1, max_rows=4)
    assert counts["image_properties"] == 4 and counts["image_tags"] == 4
    assert _count(dbapi, "image_properties") == 2


def test_purging_images_takes_their_children(dbapi, alice, synced_url):
    _deleted_image(dbapi, alice)
    _age(dbapi, 2)
    counts = purge.purge(synced_url, age_in_days=1, max_rows=-1, images=True)
    assert counts["images"] == 1 and counts["image_properties"] == 2
    assert all(_count(dbapi, name) == 0 for name in TABLES)


def test_pending_delete_work_is_never_purged(dbapi, alice, synced_url):
    image = dbapi.image_create(alice, {"status": "active"})
    dbapi.image_location_add(alice, image["id"], "file:///still/there")
    dbapi.image_pending_delete(alice, image["id"])
    _age(dbapi, 30)
    assert "image_locations" not in purge.purge(synced_url, age_in_days=1, max_rows=-1)
    assert "images" not in purge.purge(synced_url, age_in_days=1, max_rows=-1, images=True)
    assert _count(dbapi, "image_locations") == 1 and _count(dbapi, "images") == 1


@pytest.mark.parametrize("age, rows", [(-1, 10), (1, 0), (1, -2)])
def test_bad_arguments(synced_url, age, rows):
    with pytest.raises(ValueError):
        purge.purge(synced_url, age_in_days=age, max_rows=rows)


def test_glance_manage_db_purge_prints_counts(dbapi, alice, synced_url, tmp_path):
    _deleted_image(dbapi, alice)
    _age(dbapi, 5)
    conf = tmp_path / "glance-manage.conf"
    conf.write_text(f"[database]\nconnection = {synced_url}\n")
    result = subprocess.run(
        [GLANCE_MANAGE, "--config-file", str(conf), "db", "purge", "--age_in_days", "1", "--max_rows", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "purged 2 row(s) from image_properties" in result.stdout
    assert "purged 6 row(s) in total" in result.stdout
    bad = subprocess.run(
        [GLANCE_MANAGE, "--config-file", str(conf), "db", "purge", "--age_in_days", "-3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
