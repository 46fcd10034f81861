"""Image records written straight into a service's database, for listing with many images.

Creating 100,000 images through the API would take an hour; both services keep Glance's tables
and columns (ours: ``service/glance_service/db/models.py``; upstream: Glance 33 after
``db_sync``), so the same rows go into either, in bulk (``executemany``, a few thousand rows a
transaction), reflected from the live schema so that only columns the table has are written.

Each record: ``active``, ``raw``/``bare`` or ``qcow2``, sizes and hashes filled in, two properties
and one file location; ``created_at`` one second apart (so the default order, ``created_at``
then ``id`` descending, is the order of creation and known in advance); visibility by index:
4 in 10 private and 2 in 10 shared (owned by the benchmark's project, the shared ones with one
accepted member), 3 in 10 public and 1 in 10 private (another project's; not listed).
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

NAME_PREFIX = "bench-deep-"
BASE_TIME = datetime.datetime(2020, 1, 1)
CHUNK = 5000


@dataclass(frozen=True)
class Seeded:
    """One record written: its id, its position in creation order, and whether the benchmark's
    project sees it in a default listing."""

    id: str
    index: int
    visible: bool


def visibility(index: int) -> tuple[str, bool, bool]:
    """(visibility, owned by the benchmark's project, listed for it) of record ``index``."""
    slot = index % 10
    if slot < 4:
        return "private", True, True
    if slot < 6:
        return "shared", True, True
    if slot < 9:
        return "public", False, True
    return "private", False, False


def records(index: int, project: str, other: str, store_dir: Path) -> dict[str, list[dict]]:
    """The rows of record ``index``, by table (columns common to both schemas)."""
    image_id = str(uuid.uuid4())
    vis, own, _listed = visibility(index)
    created = BASE_TIME + datetime.timedelta(seconds=index)
    common = {"created_at": created, "updated_at": created, "deleted_at": None, "deleted": False}
    digest = hashlib.sha512(image_id.encode()).hexdigest()
    size = (1 << 30) + index
    image = {
        "id": image_id,
        "name": f"{NAME_PREFIX}{index:07d}",
        "size": size,
        "virtual_size": size,
        "status": "active",
        "visibility": vis,
        "protected": False,
        "os_hidden": False,
        "checksum": digest[:32],
        "os_hash_algo": "sha512",
        "os_hash_value": digest,
        "owner": project if own else other,
        "disk_format": "qcow2" if index % 2 else "raw",
        "container_format": "bare",
        "min_disk": 0,
        "min_ram": 0,
        **common,
    }
    rows: dict[str, list[dict]] = {
        "images": [image],
        "image_properties": [
            {"image_id": image_id, "name": "os_distro", "value": "ubuntu", **common},
            {"image_id": image_id, "name": "hw_disk_bus", "value": "virtio", **common},
        ],
        "image_locations": [
            {
                "image_id": image_id,
                "value": f"file://{store_dir / image_id}",
                "meta_data": "{}",
                "status": "active",
                **common,
            }
        ],
        "image_members": [],
    }
    if vis == "shared":
        rows["image_members"].append(
            {"image_id": image_id, "member": other, "can_share": False, "status": "accepted", **common}
        )
    return rows


TABLES = ("images", "image_properties", "image_locations", "image_members")


def _engine(db_url: str):
    import sqlalchemy

    args = {"timeout": 60} if db_url.startswith("sqlite") else {}
    return sqlalchemy.create_engine(db_url, connect_args=args)


def seed(db_url: str, store_dir: Path, project: str, other: str, start: int, count: int) -> list[Seeded]:
    """Writes records ``start`` .. ``start + count - 1``; returns them in creation order."""
    import sqlalchemy

    engine = _engine(db_url)
    try:
        meta = sqlalchemy.MetaData()
        meta.reflect(engine, only=TABLES)
        tables = {name: meta.tables[name] for name in TABLES}
        out: list[Seeded] = []
        for first in range(start, start + count, CHUNK):
            batch: dict[str, list[dict]] = {name: [] for name in TABLES}
            for index in range(first, min(start + count, first + CHUNK)):
                rows = records(index, project, other, store_dir)
                for name, table_rows in rows.items():
                    batch[name].extend(table_rows)
                out.append(Seeded(rows["images"][0]["id"], index, visibility(index)[2]))
            with engine.begin() as conn:
                for name in TABLES:
                    table = tables[name]
                    wanted = [{k: v for k, v in row.items() if k in table.c} for row in batch[name]]
                    if wanted:
                        conn.execute(table.insert(), wanted)
        return out
    finally:
        engine.dispose()


def remove(db_url: str) -> None:
    """Deletes every seeded record (rows, not soft deletes): the next round starts as this one."""
    import sqlalchemy

    engine = _engine(db_url)
    ids = f"SELECT id FROM images WHERE name LIKE '{NAME_PREFIX}%'"
    try:
        with engine.begin() as conn:
            for name in TABLES[1:]:
                conn.execute(sqlalchemy.text(f"DELETE FROM {name} WHERE image_id IN ({ids})"))
            conn.execute(sqlalchemy.text(f"DELETE FROM images WHERE name LIKE '{NAME_PREFIX}%'"))
    finally:
        engine.dispose()


def marker_and_next(seeded: list[Seeded], page: int) -> tuple[str, list[str]]:
    """The record about half way down the default listing (newest first) and the ids of the
    ``page`` records a listing after it must return."""
    listed = [s for s in sorted(seeded, key=lambda s: s.index, reverse=True) if s.visible]
    middle = len(listed) // 2
    return listed[middle].id, [s.id for s in listed[middle + 1 : middle + 1 + page]]
