"""``glance-manage db purge``: remove soft-deleted rows older than N days, children first, in batches.

Like Glance, ``db purge`` leaves the ``images`` rows themselves alone: a purged image id
could be created again, and someone else's image would then answer to an id that other
projects (and their instances) still refer to. ``db purge_images_table`` removes those rows
when an operator decides to.

Rows still holding work are never purged: an image or location in ``pending_delete`` still
has data in the store for the scrubber to remove.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import sqlalchemy as sa

from glance_service.db import session as db_session
from glance_service.db.models import Base

BATCH = 1000
# Rows that look deleted but still point at data the scrubber has to remove.
_KEEP = {
    "images": lambda t: t.c.status == "pending_delete",
    "image_locations": lambda t: t.c.status == "pending_delete",
}


def _soft_delete_tables() -> list[sa.Table]:
    """Tables with ``deleted``/``deleted_at``, children before their parents."""
    return [t for t in reversed(Base.metadata.sorted_tables) if {"deleted", "deleted_at"} <= set(t.c.keys())]


def _children(table: sa.Table) -> Iterator[tuple[sa.Table, sa.Column]]:
    """(child table, its column referring to ``table``'s primary key) for every foreign key."""
    for child in Base.metadata.sorted_tables:
        for fk in child.foreign_keys:
            if fk.column.table is table:
                yield child, fk.parent


def purge(url: str, age_in_days: int, max_rows: int = 100, images: bool = False) -> dict[str, int]:
    """Delete rows soft-deleted more than ``age_in_days`` ago: at most ``max_rows`` per table
    (-1: all). ``images``: the ``images`` table only (``purge_images_table``); otherwise every
    other table. Returns {table: rows removed} (children removed with a parent included)."""
    if age_in_days < 0:
        raise ValueError("age_in_days must be 0 or more")
    if max_rows < -1 or max_rows == 0:
        raise ValueError("max_rows must be -1 (no limit) or a positive number")
    cutoff = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(days=age_in_days)
    engine = db_session.create_engine(url)
    existing = set(sa.inspect(engine).get_table_names())
    counts: dict[str, int] = {}
    try:
        for table in _soft_delete_tables():
            if table.name not in existing or (table.name == "images") != images:
                continue
            _purge_table(engine, table, cutoff, max_rows, existing, counts)
    finally:
        engine.dispose()
    return counts


def _purge_table(engine, table: sa.Table, cutoff, max_rows: int, existing: set[str], counts: dict) -> None:
    (pk,) = table.primary_key.columns
    where = [table.c.deleted == sa.true(), table.c.deleted_at < cutoff]
    keep = _KEEP.get(table.name)
    if keep is not None:
        where.append(sa.not_(keep(table)))
    children = [(c, col) for c, col in _children(table) if c.name in existing]
    if table.name == "images":
        # An image whose locations still wait for the scrubber keeps its row.
        locations = Base.metadata.tables["image_locations"]
        where.append(~sa.exists().where(locations.c.image_id == pk, locations.c.status == "pending_delete"))
    removed = 0
    while max_rows == -1 or removed < max_rows:
        size = BATCH if max_rows == -1 else min(BATCH, max_rows - removed)
        # One transaction per batch: locks stay short on a live database.
        with engine.begin() as conn:
            ids = list(conn.execute(sa.select(pk).where(*where).order_by(pk).limit(size)).scalars())
            if not ids:
                break
            for child, column in children:
                gone = conn.execute(child.delete().where(column.in_(ids))).rowcount
                if gone:
                    counts[child.name] = counts.get(child.name, 0) + gone
            conn.execute(table.delete().where(pk.in_(ids)))
        removed += len(ids)
        counts[table.name] = counts.get(table.name, 0) + len(ids)
        if len(ids) < size:
            break
