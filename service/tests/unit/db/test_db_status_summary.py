"""``image_status_summary``: the images-by-status metrics' one grouped query (issue 18)."""

from __future__ import annotations

import datetime

import sqlalchemy as sa

from glance_service.db.database_api import image_status_summary
from glance_service.db.image_rows import IMAGES, utcnow


def test_counts_by_status_and_the_oldest_update_age(dbapi, alice):
    stuck = dbapi.image_create(alice, {"status": "saving"})["id"]
    dbapi.image_create(alice, {"status": "saving"})
    dbapi.image_create(alice, {"status": "queued"})
    gone = dbapi.image_create(alice, {"status": "active"})["id"]
    dbapi.image_destroy(alice, gone)
    # The upload of ``stuck`` stopped 45 minutes ago: nothing updated it since.
    with dbapi.db.writer() as s:
        old = utcnow() - datetime.timedelta(minutes=45)
        s.execute(sa.update(IMAGES).where(IMAGES.c.id == stuck).values(updated_at=old))

    summary = {status: (count, age) for status, count, age in image_status_summary(dbapi.db)}

    assert set(summary) == {"saving", "queued"}  # deleted images are not counted
    assert summary["saving"][0] == 2 and summary["queued"][0] == 1
    assert 45 * 60 <= summary["saving"][1] < 46 * 60
    assert 0 <= summary["queued"][1] < 60
