"""``image_quota_usage``: what a project's images count against Keystone's unified limits.

The four counts upstream Glance 33 makes (its ``glance/db/sqlalchemy/api.py``
``user_get_storage_usage``, ``_staging_usage``, ``_image_count``, ``_uploading_count``), in
bytes and images; ``images/unified_limits.py`` turns bytes into MiB as upstream does.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.db.image_rows import IMAGES, LOCS, PROPS

IMPORTING_TO_STORES = "os_glance_importing_to_stores"
_GONE = ("killed", "deleted", "pending_delete")
_STAGING = ("uploading", "importing")
_UPLOADING = ("saving", "uploading", "importing")


class QuotaUsageDatabaseMixin:
    """Mixed into ``DatabaseAPI`` (which provides ``self.db``)."""

    db: Any

    def image_quota_usage(self, ctx: RequestContext, owner: str) -> dict:
        if not ctx.is_admin and ctx.owner != owner:
            raise exceptions.Forbidden("Only the project or an administrator may read its usage.")
        mine = sa.and_(IMAGES.c.owner == owner, IMAGES.c.deleted == sa.false())
        live_locations = (
            sa.select(sa.func.count(LOCS.c.id))
            .where(LOCS.c.image_id == IMAGES.c.id, LOCS.c.deleted == sa.false(), LOCS.c.status != "deleted")
            .scalar_subquery()
        )
        # Images still copying to stores (copy-image): os_glance_importing_to_stores not empty.
        copying = sa.exists().where(
            PROPS.c.image_id == IMAGES.c.id,
            PROPS.c.name == IMPORTING_TO_STORES,
            PROPS.c.value != "",
            PROPS.c.deleted == sa.false(),
        )
        sized = sa.and_(mine, IMAGES.c.size > 0)
        stored = sa.select(sa.func.coalesce(sa.func.sum(IMAGES.c.size * live_locations), 0)).where(
            sized, IMAGES.c.status.notin_(_GONE)
        )
        staged = sa.select(sa.func.coalesce(sa.func.sum(IMAGES.c.size), 0)).where(
            sized,
            sa.or_(
                IMAGES.c.status.in_(_STAGING),
                sa.and_(copying, IMAGES.c.status.notin_(_STAGING + _GONE)),
            ),
        )
        count = sa.select(sa.func.count()).select_from(IMAGES).where(mine, IMAGES.c.status.notin_(_GONE))
        uploading = (
            sa.select(sa.func.count())
            .select_from(IMAGES)
            .where(
                mine,
                sa.or_(
                    IMAGES.c.status.in_(_UPLOADING),
                    sa.and_(copying, IMAGES.c.status.notin_(_UPLOADING + _GONE)),
                ),
            )
        )
        with self.db.reader() as s:
            return {
                "image_size_total": int(s.execute(stored).scalar() or 0),
                "image_stage_total": int(s.execute(staged).scalar() or 0),
                "image_count_total": int(s.execute(count).scalar() or 0),
                "image_count_uploading": int(s.execute(uploading).scalar() or 0),
            }
