"""Image rows read into records, and who may see them: the helpers every image call shares.

``db/database_api.py`` (the image calls), ``db/scrub.py`` (delayed delete) and ``db/task_records.py`` (the
import lock) build on these, so none of them reaches into another's private helpers. Records
are the plain dicts of ``db/interface.py``; timestamps are naive UTC.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.db import visibility
from glance_service.db.models import Image, ImageLocation, ImageMember, ImageProperty, ImageTag

IMAGES = Image.__table__
PROPS = ImageProperty.__table__
TAGS = ImageTag.__table__
MEMBERS = ImageMember.__table__
LOCS = ImageLocation.__table__

IMAGE_COLUMNS = tuple(c.name for c in IMAGES.columns)
TIMESTAMP_COLUMNS = frozenset({"created_at", "updated_at", "deleted_at"})


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def isotime(value: datetime.datetime | str | None) -> str | None:
    """A record's timestamp text; a ``str`` is one the database formatted already
    (``listing_columns``)."""
    if value is None or isinstance(value, str):
        return value
    return value.isoformat(timespec="microseconds")


# MySQL/MariaDB's DATE_FORMAT for isotime's text (microseconds always, no offset).
_MYSQL_ISOTIME = "%Y-%m-%dT%H:%i:%s.%f"


def listing_columns(dialect: sa.Dialect) -> list[sa.ColumnElement]:
    """IMAGES' columns for a listing, in IMAGE_COLUMNS' order and names. On MySQL/MariaDB the
    timestamps come as isotime's text, formatted by the server: mysqlclient converts DATETIME
    values in Python (DateTime_or_None), then isotime formats them back, together 18% of the
    registry's CPU on a 1000-image list and 2.3 of its 6.3 ms in the query (issue 17)."""
    if dialect.name not in ("mysql", "mariadb"):
        return list(IMAGES.columns)
    return [
        sa.func.date_format(column, _MYSQL_ISOTIME, type_=sa.String).label(column.name)
        if column.name in TIMESTAMP_COLUMNS
        else column
        for column in IMAGES.columns
    ]


def parse_time(value: Any) -> datetime.datetime | None:
    """ISO 8601 string (any offset, or ``Z``) or datetime → naive UTC datetime."""
    if value is None or isinstance(value, datetime.datetime):
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            return value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value
    if not isinstance(value, str):
        raise exceptions.InvalidFilter(f"Invalid timestamp: {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise exceptions.InvalidFilter(f"Invalid timestamp: {value!r}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.UTC).replace(tzinfo=None)
    return parsed


# -- rows → records ------------------------------------------------------------
def image_record(row: sa.Row, in_order: bool = False) -> dict:
    """``in_order``: the row holds the columns in IMAGE_COLUMNS' order (a row of select(IMAGES)),
    so zip them rather than look each one up (a list of 1000 images builds 1000 of these)."""
    if in_order:
        return _as_record(dict(zip(IMAGE_COLUMNS, row, strict=True)))
    return record_of(row._mapping)


def record_of(values: Any) -> dict:
    """The image columns of a row's mapping (or of the values just written to one) as a
    record's: what a write that does not read its row back answers with."""
    return _as_record({c: values[c] for c in IMAGE_COLUMNS})


def _as_record(out: dict) -> dict:
    for c in TIMESTAMP_COLUMNS:
        out[c] = isotime(out[c])
    for c in ("protected", "os_hidden", "deleted"):
        out[c] = bool(out[c])
    return out


def location_record(row: sa.Row) -> dict:
    return {
        "id": row.id,
        "url": row.value,
        "metadata": json.loads(row.meta_data or "{}"),
        "status": row.status,
    }


def member_record(row: sa.Row) -> dict:
    return {
        "image_id": row.image_id,
        "member": row.member,
        "status": row.status,
        "can_share": bool(row.can_share),
        "created_at": isotime(row.created_at),
        "updated_at": isotime(row.updated_at),
        "deleted": bool(row.deleted),
    }


def records(s: Session | sa.Connection, rows: Iterable[sa.Row], page: sa.Select | None = None) -> list[dict]:
    """Image records with properties, tags and locations: one query for the three child tables
    (a UNION ALL), never one per image. Each query is a database round trip: a single image read
    made four, and round trips were most of the registry's time per call. ``page``: the ids of
    ``rows`` as a query (a listing's, run again in the same transaction, so the same snapshot)."""
    rows = list(rows)
    if not rows:
        return []
    in_order = rows[0]._fields == IMAGE_COLUMNS
    return with_children(s, [image_record(r, in_order) for r in rows], page)


def with_children(
    s: Session | sa.Connection, images: list[dict], page: sa.Select | None = None
) -> list[dict]:
    """``images`` (image columns only) completed with their properties, tags and locations.

    With ``page`` (the query of the images' ids) the children are selected by that subquery
    rather than by a list of the ids: on MariaDB a 1000-image page's children took 10.5 ms as
    two statements of 1500 ids each (escaped by the driver, parsed by the server), 6.2 ms as one
    statement with the page's query inside (issue 17). SQLite is faster with the ids."""
    if not images:
        return images
    ids = [i["id"] for i in images]
    props: dict[str, dict[str, str]] = {i: {} for i in ids}
    tags: dict[str, list[str]] = {i: [] for i in ids}
    locs: dict[str, list[dict]] = {i: [] for i in ids}
    conn = s.connection() if isinstance(s, Session) else s
    # Most locations share a few metadata texts: decoded once each, copied for every location
    # (a flat copy when no value is a container, else decoded anew).
    metadata: dict[str | None, tuple[dict, bool]] = {}
    if page is not None:
        # A derived table: MariaDB allows no LIMIT in an IN subquery, but in one it selects from.
        selected = sa.select(page.subquery("page").c.id)
        children: Iterable[tuple] = conn.execute(_children_query(selected)).all()
    else:
        children = (row for chunk in _chunks(ids, _CHUNK) for row in _children(conn, chunk))
    for kind, image_id, row_id, a, b, c in children:
        if image_id not in props:
            continue  # not in this page (cannot happen in one snapshot; kept out all the same)
        if kind == "p":
            props[image_id][a] = b
        elif kind == "t":
            tags[image_id].append(a)
        else:
            known = metadata.get(b)
            if known is None:
                meta = json.loads(b or "{}")
                nested = isinstance(meta, dict) and any(isinstance(v, dict | list) for v in meta.values())
                flat = isinstance(meta, dict) and not nested
                known = metadata[b] = (meta, flat)
            meta = dict(known[0]) if known[1] else json.loads(b or "{}")
            locs[image_id].append({"id": row_id, "url": a, "metadata": meta, "status": c})
    for image in images:
        image_id = image["id"]
        image["properties"] = props[image_id]
        found = tags[image_id]
        image["tags"] = sorted(set(found)) if len(found) > 1 else found
        found = locs[image_id]
        image["locations"] = sorted(found, key=lambda loc: loc["id"]) if len(found) > 1 else found
    return images


# The children of up to _CHUNK images per query, with the id list padded to one of these sizes
# (repeating its last id changes no result) so that few statements are ever compiled.
_CHUNK = 500
_SIZES = (1, 5, 25, 100, 250, _CHUNK)


def _children(conn: sa.Connection, ids: list[str]) -> Iterable[tuple]:
    """Run ``_children_query`` for ``ids`` as SQL compiled once per dialect and size: the
    statement is the same Core query, but SQLAlchemy's per-call work on a 1500-parameter IN
    (coercing and renaming each value) was 5 of the 8 ms a 1000-image list spent here."""
    size = next(n for n in _SIZES if n >= len(ids))
    sql, names = _children_sql(conn.dialect, size)
    padded = ids + [ids[-1]] * (size - len(ids))
    values = dict(zip((f"id{k}" for k in range(size)), padded, strict=True))
    # Positional (SQLite's qmark) or named (PyMySQL's pyformat) parameters, as the dialect compiled.
    params = tuple(values[n] for n in names) if names is not None else values
    return conn.exec_driver_sql(sql, params).all()


@functools.lru_cache(maxsize=16)
def _children_sql(dialect: sa.Dialect, size: int) -> tuple[str, tuple[str, ...] | None]:
    compiled = _children_query([sa.bindparam(f"id{k}") for k in range(size)]).compile(dialect=dialect)
    return str(compiled), tuple(compiled.positiontup) if compiled.positional else None


def _children_query(ids: list) -> sa.CompoundSelect:
    """(kind, image_id, id, a, b, c) rows: properties (name, value), tags (value) and locations
    (url, metadata, status) of ``ids``."""
    # type_coerce, not CAST: MySQL/MariaDB cannot CAST to TEXT, and no conversion is needed.
    text, null = sa.Text(), sa.null()
    return sa.union_all(
        sa.select(
            sa.literal_column("'p'").label("kind"),
            PROPS.c.image_id,
            sa.type_coerce(null, sa.Integer).label("row_id"),
            sa.type_coerce(PROPS.c.name, text).label("a"),
            sa.type_coerce(PROPS.c.value, text).label("b"),
            sa.type_coerce(null, text).label("c"),
        ).where(PROPS.c.image_id.in_(ids), PROPS.c.deleted == sa.false()),
        sa.select(
            sa.literal_column("'t'"),
            TAGS.c.image_id,
            sa.type_coerce(null, sa.Integer),
            sa.type_coerce(TAGS.c.value, text),
            sa.type_coerce(null, text),
            sa.type_coerce(null, text),
        ).where(TAGS.c.image_id.in_(ids), TAGS.c.deleted == sa.false()),
        sa.select(
            sa.literal_column("'l'"),
            LOCS.c.image_id,
            LOCS.c.id,
            sa.type_coerce(LOCS.c.value, text),
            sa.type_coerce(LOCS.c.meta_data, text),
            sa.type_coerce(LOCS.c.status, text),
        ).where(LOCS.c.image_id.in_(ids), LOCS.c.deleted == sa.false()),
    )


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- soft delete (image_destroy, image_pending_delete) ------------------------------
def soft_delete(s: Session, ctx: RequestContext, image_id: str, status: str) -> tuple[dict, dict]:
    """Soft-delete the image ``ctx`` can see and its live locations, both in ``status``
    (``deleted``, or ``pending_delete`` when the data stays for the scrubber). Returns the
    record as it was just before, and the deleted columns for the caller's other children."""
    now = utcnow()
    before = records(s, [visible_row(s, ctx, image_id)])[0]
    gone = {"deleted": True, "deleted_at": now, "updated_at": now}
    changed = s.execute(
        IMAGES.update()
        .where(IMAGES.c.id == image_id, IMAGES.c.deleted == sa.false())
        .values(status=status, **gone)
    ).rowcount
    if not changed:
        raise exceptions.ImageNotFound(f"No image found with ID {image_id}")
    s.execute(
        LOCS.update()
        .where(LOCS.c.image_id == image_id, LOCS.c.deleted == sa.false())
        .values(status=status, **gone)
    )
    return before, gone


# -- reading with visibility -----------------------------------------------------
# Built once, with bound parameters: building a statement, and the cache key SQLAlchemy derives
# from each new one on every execution, cost more CPU than the database's own work for a
# single-image call (a statement object keeps its key).
_ROW = sa.select(IMAGES).where(IMAGES.c.id == sa.bindparam("image_id"))
# A write's read of the row it changes: locked until the commit (MySQL/MariaDB; SQLite's
# writer holds the database from BEGIN IMMEDIATE), so the record it returns, built from this
# row and the change, is the row as committed.
_ROW_LOCKED = _ROW.with_for_update()
_MEMBER_OF = sa.select(MEMBERS.c.id).where(
    MEMBERS.c.image_id == sa.bindparam("image_id"),
    MEMBERS.c.member == sa.bindparam("member"),
    MEMBERS.c.deleted == sa.false(),
)


def get_row(s: Session | sa.Connection, image_id: str, include_deleted: bool, lock: bool = False) -> sa.Row:
    if not isinstance(image_id, str) or len(image_id) != 36:
        raise exceptions.ImageNotFound(f"No image found with ID {image_id}")
    row = s.execute(_ROW_LOCKED if lock else _ROW, {"image_id": image_id}).first()
    if row is None or (row.deleted and not include_deleted):
        raise exceptions.ImageNotFound(f"No image found with ID {image_id}")
    return row


def visible_row(
    s: Session | sa.Connection,
    ctx: RequestContext,
    image_id: str,
    include_deleted: bool = False,
    lock: bool = False,
) -> sa.Row:
    """The image row if ``ctx`` may see it, else ``ImageNotFound``; ``lock``: for a write
    transaction that changes it (``SELECT ... FOR UPDATE``)."""
    row = get_row(s, image_id, include_deleted, lock)
    if not can_see(s, ctx, row):
        raise exceptions.ImageNotFound(f"No image found with ID {image_id}")
    return row


def update_children(
    s: Session, ctx: RequestContext, image_id: str, table: sa.Table, *where: Any, **values: Any
) -> int:
    """UPDATE the rows of ``table`` (properties, tags, members, locations) that belong to the
    image ``ctx`` can see (``ImageNotFound`` otherwise) and match ``where``: how many changed."""
    visible_row(s, ctx, image_id)
    return s.execute(table.update().where(table.c.image_id == image_id, *where).values(**values)).rowcount


# -- visibility (reference section 4.1) ------------------------------------------------
def can_see(s: Session | sa.Connection, ctx: RequestContext, row: sa.Row) -> bool:
    """Single-image visibility (``db.visibility.can_see``): the membership query runs only
    for a shared image the caller does not own."""

    def is_member() -> bool:
        return s.execute(_MEMBER_OF, {"image_id": row.id, "member": ctx.owner}).first() is not None

    return visibility.can_see(ctx, row.owner, row.visibility, is_member)


def list_visibility(ctx: RequestContext, filters: dict) -> list[sa.ColumnElement[bool]]:
    """Listing: never deleted or killed; hidden images only on request; non-admins see public,
    community, their own, and shared images where their member status matches; without a
    visibility filter community images are dropped unless the caller owns them."""
    owned = IMAGES.c.owner == ctx.owner if ctx.owner is not None else sa.false()
    clauses = [
        IMAGES.c.deleted == sa.false(),
        IMAGES.c.status != "killed",
        IMAGES.c.os_hidden == bool(filters.get("os_hidden", False)),
    ]
    wanted = filters.get("visibility")
    if wanted is None:
        clauses.append(sa.or_(IMAGES.c.visibility != "community", owned))
    elif wanted != "all":
        clauses.append(IMAGES.c.visibility == wanted)
    if not ctx.is_admin:
        member_of = [
            MEMBERS.c.image_id == IMAGES.c.id,
            MEMBERS.c.member == ctx.owner,
            MEMBERS.c.deleted == sa.false(),
        ]
        status = filters.get("member_status") or "accepted"
        if status != "all":
            member_of.append(MEMBERS.c.status == status)
        seen = [IMAGES.c.visibility.in_(("public", "community"))]
        if ctx.owner is not None:
            seen += [owned, sa.and_(IMAGES.c.visibility == "shared", sa.exists().where(*member_of))]
        clauses.append(sa.or_(*seen))
    return clauses
