"""Adoption of an upstream Glance database, and handing back to one (docs/ADOPTION.md).

``adopt`` copies the records of an upstream Glance database (read only: it stays the
rollback) into ours; ``handback`` copies ours into a database upstream's ``db sync`` created.
Both are the same idempotent copy (``Converter``): per image one transaction with its
properties, tags, members and locations; tasks by id; metadef namespaces by name, resource
types by name. A record equal in the target is not written, so a second run changes nothing
and a killed run resumes. With ``dry_run`` it only counts what it would write.

The schemas share table and column names (our models use Glance's), so a record is copied
column for column over the columns both sides have. Child rows (properties, tags, members,
locations, metadef items) get the target's own ids, inserted in the source's order (a
location's order is its priority). Timestamps compare within a second: upstream's MySQL
``DATETIME`` keeps no fraction (``_same``).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from glance_service.db import adopt_check, migrate
from glance_service.db import session as db_session
from glance_service.db.adopt_check import OURS, UPSTREAM, Refused, Survey

IMAGE_CHILDREN = ("image_properties", "image_tags", "image_members", "image_locations")
NS_ITEMS = ("metadef_properties", "metadef_objects", "metadef_tags")
TABLES = (
    "images",
    *IMAGE_CHILDREN,
    "tasks",
    "task_info",
    "metadef_namespaces",
    "metadef_resource_types",
    "metadef_namespace_resource_types",
    *NS_ITEMS,
)
# Upstream's nullable columns that are NOT NULL here: upstream's effective value for NULL.
NULL_DEFAULTS = {("metadef_namespaces", "visibility"): "private", ("metadef_namespaces", "protected"): False}
BATCH = 200
ADOPT, HANDBACK = "adopt", "handback"


def _required_to_ours(value: str | None) -> str:
    """Upstream keeps an object's ``required`` as "a,b" (glance/db/__init__.py); we keep JSON."""
    return json.dumps(value.split(",") if value else [])


def _required_to_upstream(value: str | None) -> str | None:
    names = json.loads(value or "[]")
    return ",".join(names) if names else None


# Columns whose encoding differs: (table, column) -> conversion, per direction.
ENCODINGS = {
    ADOPT: {("metadef_objects", "required"): _required_to_ours},
    HANDBACK: {("metadef_objects", "required"): _required_to_upstream},
}


def _same(a, b) -> bool:
    """Equal as records: booleans as integers; timestamps within a second of each other
    (upstream's MySQL ``DATETIME`` keeps no fraction, and MySQL rounds where MariaDB
    truncates); dicts, lists and tuples element by element."""
    if isinstance(a, datetime.datetime) and isinstance(b, datetime.datetime):
        return abs(a.replace(tzinfo=None) - b.replace(tzinfo=None)) < datetime.timedelta(seconds=1)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is not None and b is not None and int(a) == int(b)
    return a == b


# A location's scheme -> the kind of store that serves it.
SCHEME_KINDS = {"file": "file", "rbd": "rbd", "http": "http", "https": "http"}
SCHEME_KINDS |= {s: "s3" for s in ("s3", "s3+http", "s3+https")}
SCHEME_KINDS |= {s: "swift" for s in ("swift", "swift+http", "swift+https", "swift+config")}


def with_store_id(url: str, meta_data: str | None, legacy_stores: dict[str, str]) -> str | None:
    """A single-store upstream's location has no store id: the id of our one store of its
    kind (``legacy_stores``: kind -> store id), as upstream's multi-store fills it in on first
    use (glance/common/store_utils.py update_store_in_locations)."""
    try:
        meta = json.loads(meta_data or "{}")
    except ValueError:
        return meta_data
    if not isinstance(meta, dict) or meta.get("store"):
        return meta_data
    store = legacy_stores.get(SCHEME_KINDS.get(url.split(":", 1)[0].lower(), ""))
    return json.dumps({**meta, "store": store}) if store else meta_data


@dataclass
class Counts:
    written: dict[str, int] = field(
        default_factory=lambda: {"images": 0, "tasks": 0, "metadef_namespaces": 0}
    )
    unchanged: dict[str, int] = field(
        default_factory=lambda: {"images": 0, "tasks": 0, "metadef_namespaces": 0}
    )

    @property
    def changed(self) -> int:
        return sum(self.written.values())


class Converter:
    """Copies every record of ``src`` into ``dst`` (both reflected), idempotently."""

    def __init__(
        self,
        src: Engine,
        dst: Engine,
        direction: str,
        dry_run: bool = False,
        legacy_stores: dict[str, str] | None = None,
    ):
        self.src, self.dst, self.dry_run = src, dst, dry_run
        self.encodings = ENCODINGS[direction]
        self.legacy_stores = legacy_stores or {}
        self.s = self._reflect(src)
        self.d = self._reflect(dst)
        self.counts = Counts()

    @staticmethod
    def _reflect(engine: Engine) -> dict[str, sa.Table]:
        meta = sa.MetaData()
        meta.reflect(engine, only=TABLES)
        return dict(meta.tables)

    def _row(self, table: str, row, drop: tuple[str, ...] = ()) -> dict:
        """A source row as the target's columns (those both have), minus ``drop``."""
        src_cols = self.s[table].c
        out = {}
        for col in self.d[table].c:
            if col.name in drop or col.name not in src_cols:
                continue
            value = row._mapping[col.name]
            if value is None and (table, col.name) in NULL_DEFAULTS:
                value = NULL_DEFAULTS[(table, col.name)]
            if (table, col.name) in self.encodings:
                value = self.encodings[(table, col.name)](value)
            out[col.name] = value
        if table == "image_locations" and self.legacy_stores:
            out["meta_data"] = with_store_id(out.get("value") or "", out.get("meta_data"), self.legacy_stores)
        return out

    def _mine(self, table: str, row, drop: tuple[str, ...] = ()) -> dict:
        """A target row restricted to the columns a source row gives (for comparison)."""
        return {
            c.name: row._mapping[c.name]
            for c in self.d[table].c
            if c.name in self.s[table].c and c.name not in drop
        }

    # -- images ----------------------------------------------------------------------------
    def image_ids(self, engine: Engine, tables: dict[str, sa.Table]) -> list[str]:
        images = tables["images"]
        with engine.connect() as conn:
            return [i for (i,) in conn.execute(sa.select(images.c.id).order_by(images.c.id))]

    def _image_records(self, conn: Connection, tables, ids: list[str], mine: bool) -> dict[str, tuple]:
        shape = self._mine if mine else self._row
        images = tables["images"]
        out: dict[str, tuple] = {}
        for row in conn.execute(sa.select(images).where(images.c.id.in_(ids))):
            out[row.id] = (shape("images", row), {t: [] for t in IMAGE_CHILDREN})
        for table in IMAGE_CHILDREN:
            t = tables[table]
            for row in conn.execute(sa.select(t).where(t.c.image_id.in_(ids)).order_by(t.c.id)):
                if row.image_id in out:
                    out[row.image_id][1][table].append(shape(table, row, drop=("id", "image_id")))
        return out

    def _write_image(self, image_id: str, want: tuple, exists: bool) -> None:
        images = self.d["images"]
        with self.dst.begin() as conn:
            if exists:
                conn.execute(sa.update(images).where(images.c.id == image_id).values(**want[0]))
            else:
                conn.execute(sa.insert(images).values(**want[0]))
            for table in IMAGE_CHILDREN:
                t = self.d[table]
                conn.execute(sa.delete(t).where(t.c.image_id == image_id))
                rows = [dict(r, image_id=image_id) for r in want[1][table]]
                if rows:
                    conn.execute(sa.insert(t), rows)

    def images(self) -> None:
        ids = self.image_ids(self.src, self.s)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            with self.src.connect() as conn:
                want = self._image_records(conn, self.s, chunk, mine=False)
            with self.dst.connect() as conn:
                have = self._image_records(conn, self.d, chunk, mine=True)
            for image_id in chunk:
                if image_id in have and _same(want[image_id], have[image_id]):
                    self.counts.unchanged["images"] += 1
                    continue
                self.counts.written["images"] += 1
                if not self.dry_run:
                    self._write_image(image_id, want[image_id], image_id in have)

    # -- tasks -----------------------------------------------------------------------------
    def tasks(self) -> None:
        tasks, info = self.s["tasks"], self.s["task_info"]
        with self.src.connect() as conn:
            want = {r.id: [self._row("tasks", r)] for r in conn.execute(sa.select(tasks))}
            for r in conn.execute(sa.select(info)):
                want[r.task_id].append(self._row("task_info", r))
        dtasks, dinfo = self.d["tasks"], self.d["task_info"]
        with self.dst.connect() as conn:
            have = {r.id: [self._mine("tasks", r)] for r in conn.execute(sa.select(dtasks))}
            for r in conn.execute(sa.select(dinfo)):
                if r.task_id in have:
                    have[r.task_id].append(self._mine("task_info", r))
        for task_id, rows in want.items():
            if task_id in have and _same(rows, have[task_id]):
                self.counts.unchanged["tasks"] += 1
                continue
            self.counts.written["tasks"] += 1
            if self.dry_run:
                continue
            with self.dst.begin() as conn:
                conn.execute(sa.delete(dinfo).where(dinfo.c.task_id == task_id))
                if task_id in have:
                    conn.execute(sa.update(dtasks).where(dtasks.c.id == task_id).values(**rows[0]))
                else:
                    conn.execute(sa.insert(dtasks).values(**rows[0]))
                if len(rows) > 1:
                    conn.execute(sa.insert(dinfo).values(**rows[1]))

    # -- metadefs --------------------------------------------------------------------------
    def _resource_types(self) -> tuple[dict[int, str], dict[str, int]]:
        """Resource types by name into the target; (source id -> name, name -> target id)."""
        st, dt = self.s["metadef_resource_types"], self.d["metadef_resource_types"]
        with self.src.connect() as conn:
            src = {r.id: r for r in conn.execute(sa.select(st))}
        with self.dst.connect() as conn:
            dst = {r.name: r.id for r in conn.execute(sa.select(dt))}
        if not self.dry_run:
            for row in src.values():
                if row.name not in dst:
                    with self.dst.begin() as conn:
                        result = conn.execute(
                            sa.insert(dt).values(**self._row("metadef_resource_types", row, drop=("id",)))
                        )
                        dst[row.name] = result.inserted_primary_key[0]
        return {i: r.name for i, r in src.items()}, dst

    def _namespaces(self, engine: Engine, tables, rt_names: dict[int, str], mine: bool) -> dict[str, tuple]:
        shape = self._mine if mine else self._row
        ns_t, assoc = tables["metadef_namespaces"], tables["metadef_namespace_resource_types"]
        out: dict[str, tuple] = {}
        with engine.connect() as conn:
            by_id = {}
            for r in conn.execute(sa.select(ns_t)):
                by_id[r.id] = r.namespace
                out[r.namespace] = (r.id, shape("metadef_namespaces", r, drop=("id",)), {})
            items: dict[str, list] = {}
            for r in conn.execute(sa.select(assoc)):
                row = shape("metadef_namespace_resource_types", r, drop=("namespace_id", "resource_type_id"))
                items.setdefault(by_id[r.namespace_id], []).append((rt_names.get(r.resource_type_id), row))
            for ns, rows in items.items():
                out[ns][2]["metadef_namespace_resource_types"] = sorted(rows, key=lambda x: str(x[0]))
            for table in NS_ITEMS:
                for r in conn.execute(sa.select(tables[table]).order_by(tables[table].c.name)):
                    out[by_id[r.namespace_id]][2].setdefault(table, []).append(
                        shape(table, r, drop=("id", "namespace_id"))
                    )
        return out

    def metadefs(self) -> None:
        src_rt, dst_rt_ids = self._resource_types()
        with self.dst.connect() as conn:
            dst_rt = {r.id: r.name for r in conn.execute(sa.select(self.d["metadef_resource_types"]))}
        want = self._namespaces(self.src, self.s, src_rt, mine=False)
        have = self._namespaces(self.dst, self.d, dst_rt, mine=True)
        for name, record in want.items():
            if name in have and _same(record[1:], have[name][1:]):
                self.counts.unchanged["metadef_namespaces"] += 1
                continue
            self.counts.written["metadef_namespaces"] += 1
            if not self.dry_run:
                self._write_namespace(record, have.get(name), dst_rt_ids)

    def _write_namespace(self, want: tuple, have: tuple | None, rt_ids: dict[str, int]) -> None:
        ns_t, assoc = self.d["metadef_namespaces"], self.d["metadef_namespace_resource_types"]
        with self.dst.begin() as conn:
            if have is not None:
                ns_id = have[0]
                for table in ("metadef_namespace_resource_types", *NS_ITEMS):
                    t = self.d[table]
                    conn.execute(sa.delete(t).where(t.c.namespace_id == ns_id))
                conn.execute(sa.update(ns_t).where(ns_t.c.id == ns_id).values(**want[1]))
            else:
                ns_id = conn.execute(sa.insert(ns_t).values(**want[1])).inserted_primary_key[0]
            for rt_name, row in want[2].get("metadef_namespace_resource_types", []):
                conn.execute(
                    sa.insert(assoc).values(**row, namespace_id=ns_id, resource_type_id=rt_ids[rt_name])
                )
            for table in NS_ITEMS:
                rows = [dict(r, namespace_id=ns_id) for r in want[2].get(table, [])]
                if rows:
                    conn.execute(sa.insert(self.d[table]), rows)

    def run(self) -> Counts:
        self.images()
        self.tasks()
        self.metadefs()
        return self.counts


# -- the two commands --------------------------------------------------------------------


@dataclass
class Result:
    survey: Survey
    counts: Counts
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "survey": self.survey.as_dict(),
            "written": self.counts.written,
            "unchanged": self.counts.unchanged,
            "changed": self.counts.changed,
            "notes": self.notes,
        }


def _schema(engine: Engine):
    revisions = [r.id for r in migrate.revisions()]
    with engine.connect() as conn:
        return adopt_check.kind_of(conn, revisions, migrate.head())


def _extra_images(src: Engine, dst: Engine) -> list[str]:
    """Live images in the target that the source does not hold (a deleted one, e.g. the
    toolkit's smoke check's, is no one's data)."""
    if not sa.inspect(dst).has_table("images"):
        return []
    with src.connect() as conn:
        ids = {i for (i,) in conn.execute(sa.text("SELECT id FROM images"))}
    with dst.connect() as conn:
        live = conn.execute(sa.text("SELECT id FROM images WHERE deleted = :f"), {"f": False})
        return sorted(i for (i,) in live if i not in ids)


def _refuse_extra(extra: list[str], what: str) -> list[str]:
    if not extra:
        return []
    return [
        f"the {what} holds {len(extra)} image(s) the source does not have (e.g. {', '.join(extra[:3])}): "
        "it must be a fresh database or an earlier run of this same conversion"
    ]


def _convert(
    src: Engine,
    dst: Engine,
    direction: str,
    sv: Survey,
    dry_run: bool,
    notes: list[str],
    legacy_stores: dict[str, str] | None = None,
) -> Result:
    converter = Converter(src, dst, direction, dry_run=dry_run, legacy_stores=legacy_stores)
    return Result(sv, converter.run(), notes)


def adopt(
    source_url: str,
    our_url: str,
    check: bool = False,
    allow_unservable: bool = False,
    known_stores: set[str] | None = None,
    legacy_stores: dict[str, str] | None = None,
) -> Result:
    """Upstream's database (``source_url``, only read) into ours (``our_url``).
    ``legacy_stores`` (kind -> our store id): the store id given to locations that have none
    (a single-store upstream's), so that our multi-store service shows and uses them."""
    src = db_session.create_engine(source_url)
    dst = db_session.create_engine(our_url)
    try:
        schema = _schema(src)
        if schema.kind != UPSTREAM:
            raise Refused(
                [f"the source is {schema.release}'s own schema ({schema.revision}), not upstream Glance"]
            )
        with src.connect() as conn:
            sv = adopt_check.survey(conn, schema, known_stores)
        reasons = _refuse_extra(_extra_images(src, dst), "target (our database)")
        if sv.unservable and not allow_unservable:
            reasons.append(
                f"{len(sv.unservable)} image(s) have locations no store here serves (listed above); "
                "--allow-unservable carries them anyway"
            )
        notes = []
        current = migrate.current(our_url)
        if current != migrate.head():
            notes.append(f"our schema: {current or 'empty'} -> {migrate.head()} (db sync)")
        if reasons:
            exc = Refused(reasons)
            exc.survey = sv  # type: ignore[attr-defined]
            raise exc
        if check:
            if current is None:
                return Result(
                    sv,
                    Counts(
                        written={
                            "images": sum(sv.images_by_status.values()) + sv.deleted_images,
                            "tasks": sv.tasks,
                            "metadef_namespaces": sv.metadef_namespaces,
                        }
                    ),
                    notes,
                )
            migrate._check_known(current)
            return _convert(src, dst, ADOPT, sv, True, notes, legacy_stores)
        migrate.sync(our_url)
        return _convert(src, dst, ADOPT, sv, False, notes, legacy_stores)
    finally:
        src.dispose()
        dst.dispose()


def handback(our_url: str, target_url: str, check: bool = False) -> Result:
    """Ours (``our_url``, only read) into an upstream database ``target_url`` created by that
    release's ``glance-manage db sync``."""
    # duplicates: adopt() opens its two engines and checks the source's schema the same way;
    # each direction names its own source, target and refusal, so they stay side by side.
    src = db_session.create_engine(our_url)
    dst = db_session.create_engine(target_url)
    try:
        schema = _schema(src)
        if schema.kind != OURS:
            raise Refused(
                [f"our database is at {schema.revision}, expected glance-service's {migrate.head()}"]
            )
        target = _schema(dst)
        if target.kind != UPSTREAM:
            raise Refused([f"the target is not an upstream Glance schema ({target.revision})"])
        with src.connect() as conn:
            sv = adopt_check.survey(conn, schema)
        reasons = _refuse_extra(_extra_images(src, dst), "target (upstream database)")
        if reasons:
            raise Refused(reasons)
        notes = [f"target: revision {target.revision} ({target.release})"]
        return _convert(src, dst, HANDBACK, sv, check, notes)
    finally:
        src.dispose()
        dst.dispose()
