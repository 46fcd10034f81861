"""Delayed delete over SQLAlchemy: the data API methods behind ``pending_delete`` and the scrubber.

``ScrubDatabaseMixin`` gives ``DatabaseAPI`` these methods (the registry exposes them like the
others). The life of a delayed delete:

1. ``image_pending_delete``: the image row is soft-deleted in status ``pending_delete`` (so the
   API answers 404 from then on) and its locations are soft-deleted in status
   ``pending_delete``: their data is still in the store.
2. ``image_restore`` (operator): ``pending_delete`` → ``active``, locations back to ``active``.
3. ``image_scrub_claim`` (scrubber): ``pending_delete`` → ``deleted`` in one conditional UPDATE,
   so of several scrubbers (workers, API hosts) exactly one wins, and a restore can no longer
   race the removal of the data.
4. ``image_scrub_location_done``: after the data is removed, the location goes
   ``pending_delete`` → ``deleted``; with the last one, the image's properties, tags and
   members are retired too (the image is gone for good).
5. ``image_scrub_release``: the store refused or failed for some location (RBD with clones):
   ``deleted`` → ``pending_delete`` again, nothing else marked deleted. The image waits for
   the next run, and an operator can still restore it, as in Glance (whose scrubber leaves it
   ``pending_delete``).

A scrubber killed between 3 and 4/5 leaves a ``deleted`` image with ``pending_delete``
locations: ``image_scrub_list`` keeps listing it, so the next run finishes the job (removing
data is idempotent: missing data is not an error).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.db.image_rows import (
    get_row,
    isotime,
    location_record,
    parse_time,
    records,
    soft_delete,
    utcnow,
)
from glance_service.db.models import Image, ImageLocation, ImageMember, ImageProperty, ImageTag

IMAGES = Image.__table__
LOCS = ImageLocation.__table__
_CHILDREN = (ImageProperty.__table__, ImageTag.__table__, ImageMember.__table__)


def _admin_only(ctx: RequestContext, what: str) -> None:
    if not ctx.is_admin:
        raise exceptions.Forbidden(f"{what} is for administrators only.")


class ScrubDatabaseMixin:
    """Mixed into ``DatabaseAPI`` (which provides ``self.db``)."""

    db: Any

    def image_pending_delete(self, ctx: RequestContext, image_id: str) -> dict:
        with self.db.writer() as s:
            return soft_delete(s, ctx, image_id, "pending_delete")[0]

    def image_restore(self, ctx: RequestContext, image_id: str) -> dict:
        _admin_only(ctx, "Restoring an image")
        now = utcnow()
        with self.db.writer() as s:
            row = get_row(s, image_id, include_deleted=True)
            changed = s.execute(
                IMAGES.update()
                .where(IMAGES.c.id == image_id, IMAGES.c.status == "pending_delete")
                .values(status="active", deleted=False, deleted_at=None, updated_at=now)
            ).rowcount
            if not changed:
                raise exceptions.ImageStatusConflict(
                    f"Image {image_id} is in status {row.status}, not pending_delete: it cannot be restored"
                )
            s.execute(
                LOCS.update()
                .where(LOCS.c.image_id == image_id, LOCS.c.status == "pending_delete")
                .values(status="active", deleted=False, deleted_at=None, updated_at=now)
            )
            return records(s, [get_row(s, image_id, include_deleted=False)])[0]

    def image_scrub_list(
        self, ctx: RequestContext, deleted_before: str | None = None, limit: int = 100
    ) -> list[dict]:
        """Images due for scrubbing: ``pending_delete`` (or claimed and left unfinished), deleted
        at or before ``deleted_before``, with their ``pending_delete`` locations."""
        _admin_only(ctx, "Scrubbing")
        waiting = sa.exists().where(LOCS.c.image_id == IMAGES.c.id, LOCS.c.status == "pending_delete")
        query = sa.select(IMAGES.c.id, IMAGES.c.status, IMAGES.c.deleted_at).where(
            IMAGES.c.deleted == sa.true(),
            sa.or_(IMAGES.c.status == "pending_delete", sa.and_(IMAGES.c.status == "deleted", waiting)),
        )
        if deleted_before is not None:
            query = query.where(IMAGES.c.deleted_at <= parse_time(deleted_before))
        query = query.order_by(IMAGES.c.deleted_at, IMAGES.c.id).limit(max(1, int(limit)))
        with self.db.reader() as s:
            rows = s.execute(query).all()
            out = []
            for row in rows:
                locations = s.execute(
                    sa.select(LOCS)
                    .where(LOCS.c.image_id == row.id, LOCS.c.status == "pending_delete")
                    .order_by(LOCS.c.id)
                ).all()
                out.append(
                    {
                        "id": row.id,
                        "status": row.status,
                        "deleted_at": isotime(row.deleted_at),
                        "locations": [location_record(loc) for loc in locations],
                    }
                )
            return out

    def image_scrub_claim(self, ctx: RequestContext, image_id: str) -> bool:
        """``pending_delete`` → ``deleted``; False if the image was not ``pending_delete`` any
        more (claimed elsewhere, restored). An image without data left to remove is finished
        here (properties, tags and members retired)."""
        _admin_only(ctx, "Scrubbing")
        now = utcnow()
        with self.db.writer() as s:
            changed = s.execute(
                IMAGES.update()
                .where(IMAGES.c.id == image_id, IMAGES.c.status == "pending_delete")
                .values(status="deleted", deleted=True, updated_at=now)
            ).rowcount
            if not changed:
                return False
            if not _has_pending_data(s, image_id):
                _retire_children(s, image_id, now)
            return True

    def image_scrub_location_done(self, ctx: RequestContext, image_id: str, location_id: int) -> bool:
        """A claimed image's location whose data is gone: ``pending_delete`` → ``deleted``
        (with the last one, the image's properties, tags and members are retired)."""
        _admin_only(ctx, "Scrubbing")
        claimed = sa.exists().where(IMAGES.c.id == image_id, IMAGES.c.status == "deleted")
        now = utcnow()
        with self.db.writer() as s:
            done = s.execute(
                LOCS.update()
                .where(
                    LOCS.c.id == location_id,
                    LOCS.c.image_id == image_id,
                    LOCS.c.status == "pending_delete",
                    claimed,
                )
                .values(status="deleted", deleted=True, updated_at=now)
            ).rowcount
            if done and not _has_pending_data(s, image_id):
                _retire_children(s, image_id, now)
            return bool(done)

    def image_scrub_release(self, ctx: RequestContext, image_id: str) -> bool:
        """A claimed image whose data could not all be removed: ``deleted`` → ``pending_delete``
        (restorable again, scrubbed again next run). False unless the image is claimed and still
        has ``pending_delete`` locations."""
        _admin_only(ctx, "Scrubbing")
        with self.db.writer() as s:
            return bool(
                s.execute(
                    IMAGES.update()
                    .where(
                        IMAGES.c.id == image_id,
                        IMAGES.c.status == "deleted",
                        IMAGES.c.deleted == sa.true(),
                        _pending_data(image_id),
                    )
                    .values(status="pending_delete", updated_at=utcnow())
                ).rowcount
            )


def _pending_data(image_id: str):
    return sa.exists().where(LOCS.c.image_id == image_id, LOCS.c.status == "pending_delete")


def _has_pending_data(s, image_id: str) -> bool:
    return bool(s.execute(sa.select(_pending_data(image_id))).scalar())


def _retire_children(s, image_id: str, now) -> None:
    for table in _CHILDREN:
        s.execute(
            table.update()
            .where(table.c.image_id == image_id, table.c.deleted == sa.false())
            .values(deleted=True, deleted_at=now, updated_at=now)
        )
