"""Adoption of an upstream Glance database (docs/ADOPTION.md): what a database is, and the
report ``glance-manage adopt --check`` prints. Reads only.

``kind_of`` tells an upstream schema (by its ``alembic_version`` head) from ours;
``survey`` counts what a conversion would carry and lists what it would refuse.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Upstream heads we convert from and hand back into: head -> the releases that end there
# (upstream's glance/db/sqlalchemy/alembic_migrations/versions).
UPSTREAM_HEADS = {
    "2024_1_contract01": "upstream Glance 2024.1 (28.x) .. 33.x",
    "2023_1_contract01": "upstream Glance 2023.1 / 2023.2 (26.x, 27.x)",
}
# Location schemes our stores serve (file, rbd, s3, swift; http read-only).
SERVABLE_SCHEMES = frozenset(
    {"file", "rbd", "s3", "s3+http", "s3+https", "swift", "swift+http", "swift+https", "swift+config"}
    | {"http", "https"}
)
UPSTREAM = "upstream"
OURS = "ours"


class Refused(Exception):
    """The conversion would not be safe: every reason, before anything was written."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass
class Schema:
    kind: str  # UPSTREAM or OURS
    revision: str
    release: str


def kind_of(conn: Connection, our_revisions: list[str], our_head: str) -> Schema:
    """The schema of the database behind ``conn``; ``Refused`` for what we cannot convert."""
    if not sa.inspect(conn).has_table("alembic_version"):
        raise Refused(["no alembic_version table: not a Glance database (or never db synced)"])
    revs = [r for (r,) in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
    if len(revs) != 1:
        raise Refused(
            [
                f"alembic_version holds {revs}: an upstream rolling upgrade (expand/contract) is "
                "half done; finish it with upstream's glance-manage db contract first"
            ]
        )
    rev = revs[0]
    if rev in UPSTREAM_HEADS:
        return Schema(UPSTREAM, rev, UPSTREAM_HEADS[rev])
    if rev == our_head:
        return Schema(OURS, rev, "glance-service")
    if rev in our_revisions:
        raise Refused([f"glance-service schema at {rev}, not at {our_head}: run glance-manage db sync"])
    raise Refused(
        [
            f"schema revision {rev!r} is not a supported upstream Glance release "
            f"(supported heads: {', '.join(sorted(UPSTREAM_HEADS))}; see docs/ADOPTION.md)"
        ]
    )


def _store_of(meta_data: str | None) -> str | None:
    try:
        meta = json.loads(meta_data or "{}")
    except ValueError:
        return None
    return meta.get("store") if isinstance(meta, dict) else None


@dataclass
class Survey:
    """What a database holds that a conversion carries, and what it would refuse."""

    schema: Schema
    images_by_status: dict[str, int] = field(default_factory=dict)
    images_by_visibility: dict[str, int] = field(default_factory=dict)
    deleted_images: int = 0
    members_by_status: dict[str, int] = field(default_factory=dict)
    locations_by_scheme: dict[str, int] = field(default_factory=dict)
    locations_by_store: dict[str, int] = field(default_factory=dict)
    unservable: dict[str, str] = field(default_factory=dict)  # image id -> reason
    tasks: int = 0
    metadef_namespaces: int = 0

    def as_dict(self) -> dict:
        out = dict(self.__dict__)
        out["schema"] = dict(self.schema.__dict__)
        return out

    def lines(self) -> list[str]:
        def fmt(counts: dict) -> str:
            return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"

        s = self.schema
        out = [
            f"source: {s.kind} schema, revision {s.revision} ({s.release})",
            f"images by status: {fmt(self.images_by_status)} (deleted rows: {self.deleted_images})",
            f"images by visibility: {fmt(self.images_by_visibility)}",
            f"members by status: {fmt(self.members_by_status)}",
            f"locations by scheme: {fmt(self.locations_by_scheme)}",
            f"locations by store id: {fmt(self.locations_by_store)}",
            f"tasks: {self.tasks}, metadef namespaces: {self.metadef_namespaces}",
        ]
        out += [f"cannot serve image {i}: {why}" for i, why in sorted(self.unservable.items())]
        return out


def _counts(conn: Connection, table: str, column: str, where: str = "deleted = :f") -> dict[str, int]:
    rows = conn.execute(
        sa.text(f"SELECT {column}, COUNT(*) FROM {table} WHERE {where} GROUP BY {column}"),  # noqa: S608
        {"f": False},
    )
    return {str(k): int(n) for k, n in rows}


def survey(conn: Connection, schema: Schema, known_stores: set[str] | None = None) -> Survey:
    """Count the records of the database behind ``conn`` (of ``schema``)."""
    out = Survey(schema)
    out.images_by_status = _counts(conn, "images", "status")
    out.images_by_visibility = _counts(conn, "images", "visibility")
    out.deleted_images = int(
        conn.execute(sa.text("SELECT COUNT(*) FROM images WHERE deleted = :t"), {"t": True}).scalar()
    )
    out.members_by_status = _counts(conn, "image_members", "status")
    out.tasks = int(
        conn.execute(sa.text("SELECT COUNT(*) FROM tasks WHERE deleted = :f"), {"f": False}).scalar()
    )
    out.metadef_namespaces = int(conn.execute(sa.text("SELECT COUNT(*) FROM metadef_namespaces")).scalar())
    schemes: collections.Counter = collections.Counter()
    stores: collections.Counter = collections.Counter()
    rows = conn.execute(
        sa.text(
            "SELECT l.image_id, l.value, l.meta_data FROM image_locations l JOIN images i "
            "ON i.id = l.image_id WHERE l.deleted = :f AND i.deleted = :f"
        ),
        {"f": False},
    )
    for image_id, value, meta_data in rows:
        scheme = urlsplit(value).scheme.lower()
        store = _store_of(meta_data)
        schemes[scheme] += 1
        stores[store or "(none)"] += 1
        if scheme not in SERVABLE_SCHEMES:
            out.unservable[image_id] = f"location scheme {scheme!r} has no store here"
        elif known_stores is not None and store is not None and store not in known_stores:
            out.unservable[image_id] = f"store id {store!r} is not among {sorted(known_stores)}"
    out.locations_by_scheme = dict(schemes)
    out.locations_by_store = dict(stores)
    return out
