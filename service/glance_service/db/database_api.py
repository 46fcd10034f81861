"""``DatabaseAPI``: the data API (``db/interface.py``) over SQLAlchemy.

Queries are SQLAlchemy Core statements on the mapped tables and return plain rows: a list
of 1000 images costs four queries (images, then properties, tags and locations for all of
them at once), never one per image. Who may see an image is decided in one place: the
"visibility" section of db/image_rows.py (reference section 4.1).

Long because: the image calls (create, read, list, update, delete, tags, locations, members)
and the helpers only they use (column checks, properties and tags, the list query) are one
room; what db/scrub.py and db/task_records.py share with them is in db/image_rows.py.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.db import session as db_session
from glance_service.db.image_rows import (
    IMAGE_COLUMNS,
    IMAGES,
    LOCS,
    MEMBERS,
    PROPS,
    TAGS,
    TIMESTAMP_COLUMNS,
    list_visibility,
    listing_columns,
    location_record,
    member_record,
    parse_time,
    record_of,
    records,
    soft_delete,
    update_children,
    utcnow,
    visible_row,
)
from glance_service.db.interface import OPERATIONS
from glance_service.db.metadefs import MetadefDatabaseMixin
from glance_service.db.quota_usage import QuotaUsageDatabaseMixin
from glance_service.db.scrub import ScrubDatabaseMixin
from glance_service.db.task_records import TaskDatabaseMixin

# Columns a caller may set; id/created_at on create only, deleted* through image_destroy.
_WRITABLE = frozenset(IMAGE_COLUMNS) - {"id", "created_at", "updated_at", "deleted_at", "deleted"}
# The columns a list may sort by or compare (a condition on any other key names a property).
_QUERY_COLUMNS = frozenset(IMAGE_COLUMNS) - {"deleted", "deleted_at"}
_STRING_LENGTHS = {
    c.name: c.type.length for c in IMAGES.columns if isinstance(c.type, sa.String) and c.type.length
}
_INT_COLUMNS = frozenset(c.name for c in IMAGES.columns if isinstance(c.type, sa.Integer))
_BOOL_COLUMNS = frozenset({"protected", "os_hidden"})
_NOT_NULL = frozenset(c.name for c in IMAGES.columns if not c.nullable)
MAX_PROPERTY_BYTES = 65535
MAX_TAG_LENGTH = 255
MEMBER_STATUSES = frozenset({"pending", "accepted", "rejected"})
LOCATION_STATUSES = frozenset({"active", "pending_delete", "deleted"})


# MySQL/MariaDB: deadlock found / lock wait timeout. Both roll the transaction back whole,
# so running the call again is safe.
_RETRYABLE_MYSQL_ERRORS = frozenset({1205, 1213})


def _retry_on_deadlock(fn):
    """Run ``fn`` again (up to 3 attempts) after a deadlock or lock wait timeout, or after a
    connection the server had dropped failed before the COMMIT (``db_session.not_committed``:
    a pooled connection used within the last second is handed out without a ping)."""
    if getattr(fn, "_glance_retried", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for attempt in range(1, 4):
            try:
                return fn(*args, **kwargs)
            except sa.exc.DBAPIError as exc:
                if attempt == 3:
                    raise
                if db_session.not_committed(exc):
                    continue
                code = (getattr(exc.orig, "args", None) or [None])[0]
                if not isinstance(exc, sa.exc.OperationalError) or code not in _RETRYABLE_MYSQL_ERRORS:
                    raise
                time.sleep(0.02 * attempt)

    wrapper._glance_retried = True  # type: ignore[attr-defined]
    return wrapper


def image_status_summary(db: db_session.Database) -> list[tuple[str, int, float | None]]:
    """Per status of the images not deleted: how many, and the seconds since the least recently
    updated one was updated. For issue 18's metrics, at each scrape (one grouped query); not an
    operation of the data API, so never a registry call."""
    updated = sa.func.min(sa.func.coalesce(IMAGES.c.updated_at, IMAGES.c.created_at))
    query = (
        sa.select(IMAGES.c.status, sa.func.count(), updated)
        .where(IMAGES.c.deleted == sa.false())
        .group_by(IMAGES.c.status)
    )
    with db.reader() as s:
        rows = s.execute(query).all()
    now = utcnow()
    return [
        (status, count, (now - parse_time(oldest)).total_seconds() if oldest is not None else None)
        for status, count, oldest in rows
    ]


class DatabaseAPI(ScrubDatabaseMixin, MetadefDatabaseMixin, TaskDatabaseMixin, QuotaUsageDatabaseMixin):
    """The data API over the database named by ``[database] connection`` (or ``url``)."""

    def __init__(self, conf: cfg.ConfigOpts | None = None, url: str | None = None):
        self.db = db_session.Database(conf, url=url)

    # -- images ---------------------------------------------------------------
    @_retry_on_deadlock
    def image_create(self, ctx: RequestContext, values: dict) -> dict:
        values = dict(values)
        props = values.pop("properties", None) or {}
        tags = values.pop("tags", None) or []
        image_id = values.pop("id", None) or str(uuid.uuid4())
        row = _column_values(values, allow_created_at=True)
        now = utcnow()
        row.setdefault("created_at", now)
        row.update(id=image_id, updated_at=now, deleted=False, deleted_at=None)
        row.setdefault("status", "queued")
        row.setdefault("visibility", "shared")
        row.setdefault("owner", ctx.owner)
        for flag in ("protected", "os_hidden"):
            if row.get(flag) is None:
                row[flag] = False
        for minimum in ("min_disk", "min_ram"):
            if row.get(minimum) is None:
                row[minimum] = 0
        for column in IMAGE_COLUMNS:
            row.setdefault(column, None)
        try:
            with self.db.write_connection() as s:
                # A taken id (even a deleted image's) fails the INSERT: the primary key.
                s.execute(_INSERT_IMAGE, row)
                stored = _set_properties(s, image_id, props, purge=False, now=now, fresh=True)
                _replace_tags(s, image_id, tags, now, fresh=True)
        except IntegrityError as exc:
            raise exceptions.Duplicate(f"An image with identifier {image_id} already exists") from exc
        # The record is what was just written: nothing to read back.
        image = record_of(row)
        image.update(properties=stored, tags=sorted(set(tags)), locations=[])
        return image

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        """A connection for the hot reads (one image, a list): its transaction (one snapshot) is
        rolled back on close, which is also the pool's reset. An ORM session's COMMIT would be
        one more database round trip per call for nothing to commit, and the session's own
        machinery was a visible share of the registry's CPU per GET."""
        with self.db.reading() as conn:
            yield conn

    def image_get(self, ctx: RequestContext, image_id: str, include_deleted: bool = False) -> dict:
        with self._reading() as s:
            row = visible_row(s, ctx, image_id, include_deleted=include_deleted)
            return records(s, [row])[0]

    # The arguments' types: db/interface.py.
    def image_get_all(
        self, ctx, filters=None, marker=None, limit=None, sort_keys=None, sort_dirs=None
    ) -> list[dict]:
        filters = filters or {}
        keys, dirs = _sorting(sort_keys, sort_dirs)
        if limit is not None and limit <= 0:
            if marker is not None:
                with self._reading() as s:
                    _marker_row(s, ctx, marker)
            return []
        with self._reading() as s:
            # The page's ids as a query of their own: the children are selected by it (records).
            page = sa.select(IMAGES.c.id).where(*list_visibility(ctx, filters), *_filter_clauses(filters))
            if marker is not None:
                page = page.where(_after_marker(_marker_row(s, ctx, marker), keys, dirs))
                if keys == ["created_at", "id"] and not filters.get("conditions") and not filters.get("tags"):
                    page = _seek_listing_index(page)
            order = [
                IMAGES.c[k].asc() if d == "asc" else IMAGES.c[k].desc()
                for k, d in zip(keys, dirs, strict=True)
            ]
            page = page.order_by(*order)
            if limit is not None:
                page = page.limit(limit)
            rows = s.execute(page.with_only_columns(*listing_columns(s.dialect))).all()
            # MariaDB reads the children faster by the page's query, SQLite by the list of ids
            # (1000 images: 6.2 against 10.5 ms; 6.7 against 5.3 ms).
            return records(s, rows, page if s.dialect.name in ("mysql", "mariadb") else None)

    @_retry_on_deadlock
    def image_update(
        self,
        ctx: RequestContext,
        image_id: str,
        values: dict,
        purge_props: bool = False,
        from_state: str | None = None,
    ) -> dict:
        values = dict(values)
        props = values.pop("properties", None)
        tags = values.pop("tags", None)
        row = _column_values(values, allow_created_at=False)
        cleared = sorted(k for k in _NOT_NULL & row.keys() if row[k] is None)
        if cleared:
            raise exceptions.BadRequest(f"Image attribute(s) {', '.join(cleared)} cannot be null")
        now = utcnow()
        row["updated_at"] = now
        with self.db.write_connection() as s:
            before = visible_row(s, ctx, image_id, lock=True)
            # Its properties (deleted ones too: a property that comes back reuses its row), tags
            # and locations in one query, before the change: the record is built from them and
            # the change, instead of reading the children again after it.
            existing, live_tags, locations = _children_to_change(s, image_id)
            _change_image(s, image_id, row, from_state)
            properties = {name: p.value for name, p in existing.items() if not p.deleted}
            if props is not None or purge_props:
                stored = _set_properties(
                    s, image_id, props or {}, purge=purge_props, now=now, existing=existing
                )
                properties = stored if purge_props else {**properties, **stored}
            found = sorted(live_tags)
            if tags is not None:
                _replace_tags(s, image_id, tags, now, live=live_tags)
                found = sorted(set(tags))
            # The row was read locked: with the change applied it is the row as committed.
            image = record_of({**before._mapping, **row})
            image.update(properties=properties, tags=found, locations=locations)
            return image

    @_retry_on_deadlock
    def image_destroy(self, ctx: RequestContext, image_id: str) -> dict:
        with self.db.writer() as s:
            before, gone = soft_delete(s, ctx, image_id, "deleted")
            for table in (PROPS, TAGS, MEMBERS):
                s.execute(
                    table.update()
                    .where(table.c.image_id == image_id, table.c.deleted == sa.false())
                    .values(**gone)
                )
            return before

    # -- tags -------------------------------------------------------------------
    @_retry_on_deadlock
    def image_tag_create(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        _check_tag(tag)
        with self.db.writer() as s:
            visible_row(s, ctx, image_id)
            exists = s.execute(
                sa.select(TAGS.c.id).where(
                    TAGS.c.image_id == image_id, TAGS.c.value == tag, TAGS.c.deleted == sa.false()
                )
            ).first()
            if not exists:
                now = utcnow()
                s.execute(
                    TAGS.insert().values(
                        image_id=image_id, value=tag, created_at=now, updated_at=now, deleted=False
                    )
                )

    @_retry_on_deadlock
    def image_tag_delete(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        with self.db.writer() as s:
            visible_row(s, ctx, image_id)
            now = utcnow()
            changed = s.execute(
                TAGS.update()
                .where(TAGS.c.image_id == image_id, TAGS.c.value == tag, TAGS.c.deleted == sa.false())
                .values(deleted=True, deleted_at=now, updated_at=now)
            ).rowcount
            if not changed:
                raise exceptions.TagNotFound(f"Tag {tag} not found on image {image_id}")

    # -- locations ----------------------------------------------------------------
    @_retry_on_deadlock
    def image_location_add(
        self,
        ctx: RequestContext,
        image_id: str,
        url: str,
        metadata: dict | None = None,
        status: str = "active",
    ) -> dict:
        _check_location_status(status)
        now = utcnow()
        with self.db.writer() as s:
            visible_row(s, ctx, image_id)
            result = s.execute(
                LOCS.insert().values(
                    image_id=image_id,
                    value=url,
                    meta_data=json.dumps(metadata or {}),
                    status=status,
                    created_at=now,
                    updated_at=now,
                    deleted=False,
                )
            )
            location_id = result.inserted_primary_key[0]
        return {"id": location_id, "url": url, "metadata": metadata or {}, "status": status}

    @_retry_on_deadlock
    def image_activate(
        self,
        ctx: RequestContext,
        image_id: str,
        url: str,
        metadata: dict | None,
        values: dict,
        from_state: str = "saving",
    ) -> dict:
        """The end of an upload in one transaction: record the data's location and apply
        ``values`` (status ``active``, size, hashes) if the image is still ``from_state``.
        Either both happen or neither (``ImageStatusConflict``/``ImageNotFound``); one
        registry call instead of two. Returns the new location."""
        values = dict(values)
        if "properties" in values or "tags" in values:
            raise exceptions.BadRequest("image_activate sets image columns only")
        row = _column_values(values, allow_created_at=False)
        now = utcnow()
        row["updated_at"] = now
        with self.db.write_connection() as s:
            if not _change_own_image(s, ctx, image_id, row, from_state):
                visible_row(s, ctx, image_id, lock=True)
                _change_image(s, image_id, row, from_state)
            location = {
                "image_id": image_id,
                "value": url,
                "meta_data": json.dumps(metadata or {}),
                "status": "active",
                "created_at": now,
                "updated_at": now,
                "deleted": False,
            }
            location_id = s.execute(_INSERT_LOCATION, location).inserted_primary_key[0]
        return {"id": location_id, "url": url, "metadata": metadata or {}, "status": "active"}

    @_retry_on_deadlock
    def image_location_update(
        self, ctx: RequestContext, image_id: str, location_id: int, values: dict
    ) -> dict:
        unknown = set(values) - {"metadata", "status", "url"}
        if unknown:
            raise exceptions.BadRequest(f"Unknown location attribute(s): {', '.join(sorted(unknown))}")
        row: dict[str, Any] = {"updated_at": utcnow()}
        if "metadata" in values:
            row["meta_data"] = json.dumps(values["metadata"] or {})
        if "url" in values:
            row["value"] = values["url"]
        if "status" in values:
            _check_location_status(values["status"])
            row["status"] = values["status"]
            if values["status"] == "deleted":
                row.update(deleted=True, deleted_at=row["updated_at"])
        with self.db.writer() as s:
            visible_row(s, ctx, image_id)
            where = [LOCS.c.id == location_id, LOCS.c.image_id == image_id, LOCS.c.deleted == sa.false()]
            if not s.execute(LOCS.update().where(*where).values(**row)).rowcount:
                raise exceptions.LocationNotFound(f"Location {location_id} not found on image {image_id}")
            loc = s.execute(sa.select(LOCS).where(LOCS.c.id == location_id)).one()
            return location_record(loc)

    @_retry_on_deadlock
    def image_location_delete(
        self, ctx: RequestContext, image_id: str, location_id: int, status: str = "deleted"
    ) -> None:
        if status not in ("deleted", "pending_delete"):
            raise exceptions.BadRequest(
                f"A deleted location's status must be deleted or pending_delete, not {status}"
            )
        now = utcnow()
        gone = {"status": status, "deleted": True, "deleted_at": now, "updated_at": now}
        with self.db.writer() as s:
            live = (LOCS.c.id == location_id, LOCS.c.deleted == sa.false())
            if not update_children(s, ctx, image_id, LOCS, *live, **gone):
                raise exceptions.LocationNotFound(f"Location {location_id} not found on image {image_id}")

    # -- members --------------------------------------------------------------------
    @_retry_on_deadlock
    def image_member_create(self, ctx: RequestContext, image_id: str, member: str) -> dict:
        now = utcnow()
        with self.db.writer() as s:
            visible_row(s, ctx, image_id)
            rows = s.execute(
                sa.select(MEMBERS).where(MEMBERS.c.image_id == image_id, MEMBERS.c.member == member)
            ).all()
            if any(not r.deleted for r in rows):
                raise exceptions.Duplicate(f"{member} is already a member of image {image_id}")
            if rows:
                # Like Glance: re-adding a member revives its soft-deleted row.
                revived = max(rows, key=lambda r: r.id)
                s.execute(
                    MEMBERS.update()
                    .where(MEMBERS.c.id == revived.id)
                    .values(status="pending", can_share=False, deleted=False, deleted_at=None, updated_at=now)
                )
                member_id = revived.id
            else:
                result = s.execute(
                    MEMBERS.insert().values(
                        image_id=image_id,
                        member=member,
                        status="pending",
                        can_share=False,
                        created_at=now,
                        updated_at=now,
                        deleted=False,
                    )
                )
                member_id = result.inserted_primary_key[0]
            return member_record(s.execute(sa.select(MEMBERS).where(MEMBERS.c.id == member_id)).one())

    @_retry_on_deadlock
    def image_member_update(self, ctx: RequestContext, image_id: str, member: str, status: str) -> dict:
        if status not in MEMBER_STATUSES:
            raise exceptions.BadRequest(
                f"Invalid member status {status!r}: must be one of pending, accepted, rejected"
            )
        with self.db.writer() as s:
            where = _change_member(s, ctx, image_id, member, status=status, updated_at=utcnow())
            return member_record(s.execute(sa.select(MEMBERS).where(*where)).one())

    @_retry_on_deadlock
    def image_member_delete(self, ctx: RequestContext, image_id: str, member: str) -> None:
        now = utcnow()
        with self.db.writer() as s:
            _change_member(s, ctx, image_id, member, deleted=True, deleted_at=now, updated_at=now)

    def image_member_find(self, ctx: RequestContext, image_id: str, member: str | None = None) -> list[dict]:
        with self.db.reader() as s:
            image = visible_row(s, ctx, image_id)
            query = sa.select(MEMBERS).where(MEMBERS.c.image_id == image_id, MEMBERS.c.deleted == sa.false())
            if not ctx.is_admin and (ctx.owner is None or ctx.owner != image.owner):
                # A member sees only its own row.
                query = query.where(MEMBERS.c.member == ctx.owner)
            if member is not None:
                query = query.where(MEMBERS.c.member == member)
            rows = s.execute(query.order_by(MEMBERS.c.created_at, MEMBERS.c.id)).all()
            return [member_record(r) for r in rows]

    # -- quotas ---------------------------------------------------------------------
    def image_storage_usage(self, ctx: RequestContext, owner: str) -> int:
        if not ctx.is_admin and ctx.owner != owner:
            raise exceptions.Forbidden("Only the project or an administrator may read its storage usage.")
        # Like Glance: each stored copy counts, so size times the image's live locations;
        # killed and deleted images hold no data.
        live = (
            sa.select(sa.func.count(LOCS.c.id))
            .where(LOCS.c.image_id == IMAGES.c.id, LOCS.c.deleted == sa.false(), LOCS.c.status != "deleted")
            .scalar_subquery()
        )
        query = sa.select(sa.func.coalesce(sa.func.sum(IMAGES.c.size * live), 0)).where(
            IMAGES.c.owner == owner,
            IMAGES.c.deleted == sa.false(),
            IMAGES.c.status.notin_(("killed", "deleted")),
            IMAGES.c.size > 0,
        )
        with self.db.reader() as s:
            return int(s.execute(query).scalar() or 0)

    # -- maintenance ----------------------------------------------------------------
    def image_get_by_status(
        self, ctx: RequestContext, status: str, updated_before: str | None = None
    ) -> list[dict]:
        if not ctx.is_admin:
            raise exceptions.Forbidden("Listing images by status is for administrators only.")
        query = sa.select(IMAGES).where(IMAGES.c.status == status, IMAGES.c.deleted == sa.false())
        if updated_before is not None:
            query = query.where(IMAGES.c.updated_at < parse_time(updated_before))
        with self.db.reader() as s:
            return records(s, s.execute(query.order_by(IMAGES.c.created_at, IMAGES.c.id)).all())

    def ping(self, ctx: RequestContext) -> dict:
        try:
            with self.db.reader() as s:
                s.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise exceptions.ServiceUnavailable(
                f"The image database is unreachable: {type(exc).__name__}"
            ) from exc
        return {"database": "ok", "backend": self.db.engine.dialect.name}


def _change_member(s: Session, ctx: RequestContext, image_id: str, member: str, **values: Any) -> list:
    """Update the live membership of ``member`` on an image ``ctx`` can see; ``MemberNotFound``
    if there is none. Returns the WHERE clauses that select it."""
    where = [MEMBERS.c.image_id == image_id, MEMBERS.c.member == member, MEMBERS.c.deleted == sa.false()]
    if not update_children(s, ctx, image_id, MEMBERS, *where[1:], **values):
        raise exceptions.MemberNotFound(f"{member} is not a member of image {image_id}")
    return where


def _marker_row(s: Session | sa.Connection, ctx: RequestContext, marker: str) -> sa.Row:
    try:
        return visible_row(s, ctx, marker)
    except exceptions.ImageNotFound:
        raise exceptions.InvalidMarker(f"Invalid marker: no image found with ID {marker}") from None


# -- writing helpers ---------------------------------------------------------------
# Built once (see db/image_rows.py): the create's and the upload's statements.
_INSERT_IMAGE = IMAGES.insert()
_INSERT_LOCATION = LOCS.insert()
_UPDATE_IMAGE = IMAGES.update().where(IMAGES.c.id == sa.bindparam("b_id"), IMAGES.c.deleted == sa.false())
_UPDATE_IMAGE_FROM = _UPDATE_IMAGE.where(IMAGES.c.status == sa.bindparam("b_from"))
_STATUS = sa.select(IMAGES.c.status).where(IMAGES.c.id == sa.bindparam("image_id"))
_PROPS_OF = sa.select(PROPS.c.id, PROPS.c.name, PROPS.c.value, PROPS.c.deleted).where(
    PROPS.c.image_id == sa.bindparam("image_id")
)
_INSERT_PROP = PROPS.insert()
_UPDATE_PROP = PROPS.update().where(PROPS.c.id == sa.bindparam("b_id"))
_DROP_PROPS = PROPS.update().where(PROPS.c.id.in_(sa.bindparam("b_ids", expanding=True)))
_TAGS_OF = sa.select(TAGS.c.id, TAGS.c.value).where(
    TAGS.c.image_id == sa.bindparam("image_id"), TAGS.c.deleted == sa.false()
)
_INSERT_TAG = TAGS.insert()
_DROP_TAGS = TAGS.update().where(TAGS.c.id.in_(sa.bindparam("b_ids", expanding=True)))


# The same UPDATE, made only if the caller sees the image without a membership (admin, owner,
# ownerless, public or community): the visibility check without the SELECT before it.
_SEEN_WITHOUT_MEMBERSHIP = sa.or_(
    IMAGES.c.owner == sa.bindparam("b_owner"),
    IMAGES.c.owner.is_(None),
    IMAGES.c.visibility == "public",
    IMAGES.c.visibility == "community",
)
_UPDATE_OWN_IMAGE_FROM = _UPDATE_IMAGE_FROM.where(_SEEN_WITHOUT_MEMBERSHIP)


def _change_own_image(
    s: sa.Connection, ctx: RequestContext, image_id: str, row: dict, from_state: str
) -> bool:
    """``_change_image`` in one statement when the caller may see the image without a
    membership and it is still ``from_state``: True if changed. False changes nothing: the
    caller then reads the row (the visibility rule with memberships, the precise error)."""
    params = {**row, "b_id": image_id, "b_from": from_state}
    if ctx.is_admin:
        return bool(s.execute(_UPDATE_IMAGE_FROM, params).rowcount)
    params["b_owner"] = ctx.owner
    return bool(s.execute(_UPDATE_OWN_IMAGE_FROM, params).rowcount)


class _Prop(NamedTuple):
    id: int
    name: str
    value: str | None
    deleted: bool


def _children_query() -> sa.CompoundSelect:
    """(kind, id, a, b, c) rows of one image: properties, live ('p') and deleted ('d') (name,
    value), live tags ('t': value) and live locations ('l': url, metadata, status)."""
    image_id, text, null = sa.bindparam("image_id"), sa.Text(), sa.null()

    def props(kind: str, deleted: bool) -> sa.Select:
        return sa.select(
            sa.literal_column(f"'{kind}'").label("kind"),
            PROPS.c.id.label("row_id"),
            sa.type_coerce(PROPS.c.name, text).label("a"),
            sa.type_coerce(PROPS.c.value, text).label("b"),
            sa.type_coerce(null, text).label("c"),
        ).where(PROPS.c.image_id == image_id, PROPS.c.deleted == (sa.true() if deleted else sa.false()))

    return sa.union_all(
        props("p", False),
        props("d", True),
        sa.select(
            sa.literal_column("'t'"),
            TAGS.c.id,
            sa.type_coerce(TAGS.c.value, text),
            sa.type_coerce(null, text),
            sa.type_coerce(null, text),
        ).where(TAGS.c.image_id == image_id, TAGS.c.deleted == sa.false()),
        sa.select(
            sa.literal_column("'l'"),
            LOCS.c.id,
            sa.type_coerce(LOCS.c.value, text),
            sa.type_coerce(LOCS.c.meta_data, text),
            sa.type_coerce(LOCS.c.status, text),
        ).where(LOCS.c.image_id == image_id, LOCS.c.deleted == sa.false()),
    )


_CHILDREN_TO_CHANGE = _children_query()


def _children_to_change(
    s: sa.Connection, image_id: str
) -> tuple[dict[str, _Prop], dict[str, int], list[dict]]:
    """One image's property rows by name (deleted ones too), live tags (value: row id) and
    live locations (records, in position order): one query."""
    props: dict[str, _Prop] = {}
    tags: dict[str, int] = {}
    locations = []
    for kind, row_id, a, b, c in s.execute(_CHILDREN_TO_CHANGE, {"image_id": image_id}):
        if kind in ("p", "d"):
            props[a] = _Prop(row_id, a, b, kind == "d")
        elif kind == "t":
            tags[a] = row_id
        else:
            locations.append({"id": row_id, "url": a, "metadata": json.loads(b or "{}"), "status": c})
    locations.sort(key=lambda loc: loc["id"])
    return props, tags, locations


def _change_image(s: sa.Connection, image_id: str, row: dict, from_state: str | None) -> None:
    """UPDATE the live image's columns to ``row`` (only if still ``from_state`` when given: one
    statement, so the status check and the change cannot be separated by a racer)."""
    params = {**row, "b_id": image_id}
    if from_state is not None:
        params["b_from"] = from_state
    changed = s.execute(_UPDATE_IMAGE if from_state is None else _UPDATE_IMAGE_FROM, params).rowcount
    if changed:
        return
    if from_state is not None:
        current = s.execute(_STATUS, {"image_id": image_id}).scalar()
        raise exceptions.ImageStatusConflict(
            f"Image {image_id} is in status {current}, not {from_state}: the change was not made"
        )
    raise exceptions.ImageNotFound(f"No image found with ID {image_id}")


def _column_values(values: dict, allow_created_at: bool) -> dict:
    allowed = _WRITABLE | ({"created_at"} if allow_created_at else set())
    unknown = set(values) - allowed
    if unknown:
        raise exceptions.BadRequest(f"Unknown or read-only image attribute(s): {', '.join(sorted(unknown))}")
    row = dict(values)
    for key, value in row.items():
        length = _STRING_LENGTHS.get(key)
        if length is not None and isinstance(value, str) and len(value) > length:
            raise exceptions.BadRequest(f"Image attribute {key} is longer than {length} characters")
    for key in _INT_COLUMNS & row.keys():
        if row[key] is not None and (isinstance(row[key], bool) or not isinstance(row[key], int)):
            raise exceptions.BadRequest(f"Image attribute {key} must be an integer")
    for key in _BOOL_COLUMNS & row.keys():
        if row[key] is not None and not isinstance(row[key], bool):
            raise exceptions.BadRequest(f"Image attribute {key} must be true or false")
    if "created_at" in row:
        row["created_at"] = parse_time(row["created_at"])
    if "status" in row and not row["status"]:
        raise exceptions.BadRequest("An image status cannot be empty")
    return row


def _set_properties(
    s: Session | sa.Connection,
    image_id: str,
    props: dict,
    purge: bool,
    now: datetime.datetime,
    fresh: bool = False,
    existing: dict[str, Any] | None = None,
) -> dict[str, str | None]:
    """Upsert ``props``; with ``purge`` soft-delete every other live property. Returns
    ``props`` as stored (values as strings).

    The (image_id, name) pair is unique even among deleted rows, so a property that comes
    back reuses its old row. ``fresh``: the image was created in this transaction (it has no
    rows yet: no query for them). ``existing``: its property rows by name, already read.
    """
    stored: dict[str, str | None] = {}
    if fresh and not props:
        return stored
    if existing is None:
        existing = {} if fresh else {r.name: r for r in s.execute(_PROPS_OF, {"image_id": image_id})}
    new_rows = []
    for name, value in props.items():
        value = None if value is None else str(value)
        _check_property(name, value)
        stored[name] = value
        old = existing.get(name)
        if old is None:
            new_rows.append(
                {
                    "image_id": image_id,
                    "name": name,
                    "value": value,
                    "created_at": now,
                    "updated_at": now,
                    "deleted": False,
                }
            )
        elif old.deleted or old.value != value:
            s.execute(
                _UPDATE_PROP,
                {"b_id": old.id, "value": value, "deleted": False, "deleted_at": None, "updated_at": now},
            )
    if new_rows:
        s.execute(_INSERT_PROP, new_rows)
    if purge:
        stale = [r.id for name, r in existing.items() if not r.deleted and name not in props]
        if stale:
            s.execute(_DROP_PROPS, {"b_ids": stale, "deleted": True, "deleted_at": now, "updated_at": now})
    return stored


def _check_property(name: str, value: str | None) -> None:
    # The same limits on every backend (MySQL's TEXT holds 65535 bytes; SQLite has no limit).
    if not isinstance(name, str) or not name or len(name) > 255:
        raise exceptions.BadRequest(f"Property names must be 1 to 255 characters: {str(name)[:40]!r}")
    if value is not None and len(value.encode("utf-8")) > MAX_PROPERTY_BYTES:
        raise exceptions.BadRequest(f"The value of property {name} is longer than {MAX_PROPERTY_BYTES} bytes")


def _replace_tags(
    s: Session | sa.Connection,
    image_id: str,
    tags: Iterable[str],
    now: datetime.datetime,
    fresh: bool = False,
    live: dict[str, int] | None = None,
) -> None:
    """``live``: the image's live tags (value: row id), already read."""
    wanted = set(tags)
    for tag in wanted:
        _check_tag(tag)
    if fresh and not wanted:
        return
    if live is None:
        live = (
            {} if fresh else {value: tag_id for tag_id, value in s.execute(_TAGS_OF, {"image_id": image_id})}
        )
    gone = [tag_id for value, tag_id in live.items() if value not in wanted]
    if gone:
        s.execute(_DROP_TAGS, {"b_ids": gone, "deleted": True, "deleted_at": now, "updated_at": now})
    added = [
        {"image_id": image_id, "value": t, "created_at": now, "updated_at": now, "deleted": False}
        for t in sorted(wanted - set(live))
    ]
    if added:
        s.execute(_INSERT_TAG, added)


def _check_tag(tag: str) -> None:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH:
        raise exceptions.BadRequest(f"Tags must be 1 to {MAX_TAG_LENGTH} characters: {str(tag)[:40]!r}")


def _check_location_status(status: str) -> None:
    if status not in LOCATION_STATUSES:
        raise exceptions.BadRequest(f"Invalid location status {status!r}")


# -- filters, sorting, markers ---------------------------------------------------------
def _sorting(sort_keys: list[str] | None, sort_dirs: list[str] | None) -> tuple[list[str], list[str]]:
    """Glance's rules: default created_at desc; one dir applies to all keys; created_at and id
    appended as tie-breakers in the default direction."""
    keys = list(sort_keys or ["created_at"])
    dirs = list(sort_dirs or [])
    for key in keys:
        if key not in _QUERY_COLUMNS:
            raise exceptions.InvalidSortKey(f"Invalid sort key: {key}")
    for d in dirs:
        if d not in ("asc", "desc"):
            raise exceptions.BadRequest(f"Invalid sort direction: {d}")
    default_dir = "desc"
    if not dirs:
        dirs = [default_dir] * len(keys)
    elif len(dirs) == 1:
        default_dir = dirs[0]
        dirs = dirs * len(keys)
    elif len(dirs) != len(keys):
        raise exceptions.BadRequest(
            "The number of sort directions must be 1 or match the number of sort keys"
        )
    for tie in ("created_at", "id"):
        if tie not in keys:
            keys.append(tie)
            dirs.append(default_dir)
    return keys, dirs


def _after_marker(marker: sa.Row, keys: list[str], dirs: list[str]) -> sa.ColumnElement[bool]:
    """Rows strictly after ``marker`` in the (keys, dirs) order, NULL sorting lowest (as in
    both SQLite and MySQL ascending order): keyset paging, never an OFFSET.

    When the first key cannot be NULL, a plain range on it (implied by the rest) comes first:
    the index of the default order (``ix_images_listing``) seeks to the marker with it."""
    m = marker._mapping
    alternatives = []
    for i, (key, direction) in enumerate(zip(keys, dirs, strict=True)):
        same = [_equal(IMAGES.c[k], m[k]) for k in keys[:i]]
        alternatives.append(sa.and_(*same, _beyond(IMAGES.c[key], m[key], direction)))
    after = sa.or_(*alternatives)
    first = IMAGES.c[keys[0]]
    if first.nullable or m[keys[0]] is None:
        return after
    bound = first >= m[keys[0]] if dirs[0] == "asc" else first <= m[keys[0]]
    return sa.and_(bound, after)


def _seek_listing_index(query: sa.Select) -> sa.Select:
    """A page after a marker in the default order, with no filter on columns, properties or tags:
    MariaDB/MySQL must use ix_images_listing as a range starting at the marker. Left to itself,
    MariaDB 10.11 chooses a ref on its two equality columns and walks it backwards from the
    start (no index condition pushdown backwards): 0.5 s for a page 90,000 images deep, 2 ms
    forced. With a filter the choice stays the optimizer's (an index on name beats the order)."""
    hint = "FORCE INDEX (ix_images_listing)"
    return query.with_hint(IMAGES, hint, "mysql").with_hint(IMAGES, hint, "mariadb")


def _equal(column: sa.ColumnElement, value: Any) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _beyond(column: sa.Column, value: Any, direction: str) -> sa.ColumnElement[bool]:
    if direction == "asc":
        return column.is_not(None) if value is None else column > value
    if value is None:
        return sa.false()
    # A column that cannot be NULL needs no IS NULL branch (it would keep an index from seeking).
    return sa.or_(column < value, column.is_(None)) if column.nullable else column < value


def _filter_clauses(filters: dict) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = []
    for condition in filters.get("conditions") or []:
        key, op, value = condition
        if key in _QUERY_COLUMNS:
            clauses.append(_column_condition(key, op, value))
        else:
            clauses.append(_property_condition(key, op, value))
    for tag in filters.get("tags") or []:
        clauses.append(
            sa.exists().where(
                TAGS.c.image_id == IMAGES.c.id, TAGS.c.value == tag, TAGS.c.deleted == sa.false()
            )
        )
    return clauses


def _coerce(key: str, value: Any) -> Any:
    if key in TIMESTAMP_COLUMNS:
        return parse_time(value)
    if key in ("protected", "os_hidden"):
        if isinstance(value, str):
            if value not in ("true", "false", "True", "False"):
                raise exceptions.InvalidFilter(f"Invalid value for {key}: {value!r}")
            return value.lower() == "true"
        return bool(value)
    if key in ("size", "virtual_size", "min_disk", "min_ram"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise exceptions.InvalidFilter(f"Invalid value for {key}: {value!r}") from None
    return value


_OPS = {
    "eq": lambda c, v: c == v,
    "neq": lambda c, v: c != v,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
}


def _column_condition(key: str, op: str, value: Any) -> sa.ColumnElement[bool]:
    column = IMAGES.c[key]
    if op == "in":
        values = value if isinstance(value, list | tuple | set) else [value]
        return column.in_([_coerce(key, v) for v in values])
    if op not in _OPS:
        raise exceptions.InvalidFilter(f"Invalid operator {op!r} for {key}")
    value = _coerce(key, value)
    if value is None:
        if op == "eq":
            return column.is_(None)
        if op == "neq":
            return column.is_not(None)
        raise exceptions.InvalidFilter(f"Operator {op} needs a value for {key}")
    return _OPS[op](column, value)


def _property_condition(name: str, op: str, value: Any) -> sa.ColumnElement[bool]:
    live = [PROPS.c.image_id == IMAGES.c.id, PROPS.c.name == name, PROPS.c.deleted == sa.false()]
    if op == "eq":
        return sa.exists().where(*live, PROPS.c.value == str(value))
    if op == "in":
        values = value if isinstance(value, list | tuple | set) else [value]
        return sa.exists().where(*live, PROPS.c.value.in_([str(v) for v in values]))
    raise exceptions.InvalidFilter(f"Custom property filters support equality only ({name})")


# Every operation of the data API (reads, and the mixins' calls too) runs again after a lost
# connection met before its COMMIT; the image writes above also after a deadlock.
for _name in OPERATIONS:
    setattr(DatabaseAPI, _name, _retry_on_deadlock(getattr(DatabaseAPI, _name)))
del _name
