"""Metadata definitions (metadefs) over SQLAlchemy: the ``metadef_*`` methods of the data API.

``MetadefDatabaseMixin`` gives ``DatabaseAPI`` these methods; the registry exposes them like
every other ``DataAPI`` method. Who may *see* a namespace is decided here (admins: all;
others: public namespaces and their project's own), like images: an invisible namespace is
``NotFound``. Who may *change* one is the API layer's policy decision. A namespace's contents
are small, so a read returns the namespace whole (associations, properties, objects, tags).

Records (plain JSON-compatible dicts, timestamps as naive-UTC ISO strings)::

    namespace:   {"namespace", "display_name", "description", "visibility", "protected", "owner",
                  "created_at", "updated_at", "resource_type_associations": [association, ...],
                  # metadef_namespace_get / _create / _update only:
                  "properties": {name: {json schema}}, "objects": [object, ...], "tags": [tag, ...]}
    association: {"name", "prefix", "properties_target", "created_at", "updated_at"}
    property:    {"name", "title", "type", ...}        (the rest of its JSON schema)
    object:      {"name", "description", "required": [...], "properties": {...}, "created_at", "updated_at"}
    tag:         {"name", "created_at", "updated_at"}

Long because: a namespace and its four kinds of contents are one aggregate, read and written
whole in one transaction; its twelve calls share the record and visibility helpers above.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.db.models import (
    MetadefNamespace,
    MetadefNamespaceResourceType,
    MetadefObject,
    MetadefProperty,
    MetadefResourceType,
    MetadefTag,
)

NAMESPACES = MetadefNamespace.__table__
RESOURCE_TYPES = MetadefResourceType.__table__
ASSOCIATIONS = MetadefNamespaceResourceType.__table__
PROPERTIES = MetadefProperty.__table__
OBJECTS = MetadefObject.__table__
TAGS = MetadefTag.__table__

KINDS = {"property": PROPERTIES, "object": OBJECTS, "tag": TAGS}
NAME_LENGTH = 80
VISIBILITIES = ("public", "private")
SORT_KEYS = ("created_at", "updated_at", "namespace", "id")
_NAMESPACE_COLUMNS = ("namespace", "display_name", "description", "visibility", "protected", "owner")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _iso(value) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds")


def _check_name(what: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_LENGTH:
        raise exceptions.BadRequest(f"A metadef {what} name must be 1 to {NAME_LENGTH} characters")
    return name


def can_see(ctx: RequestContext, row: Any) -> bool:
    return ctx.is_admin or row.visibility == "public" or (ctx.owner is not None and row.owner == ctx.owner)


# -- records -------------------------------------------------------------------------------
def _namespace(row: Any) -> dict:
    return {
        "namespace": row.namespace,
        "display_name": row.display_name,
        "description": row.description,
        "visibility": row.visibility,
        "protected": bool(row.protected),
        "owner": row.owner,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _association(row: Any) -> dict:
    return {
        "name": row.name,
        "prefix": row.prefix,
        "properties_target": row.properties_target,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _property(row: Any) -> dict:
    schema = json.loads(row.json_schema or "{}")
    return {"name": row.name, **{k: v for k, v in schema.items() if k != "name"}}


def _object(row: Any) -> dict:
    return {
        "name": row.name,
        "description": row.description,
        "required": json.loads(row.required or "[]"),
        "properties": json.loads(row.json_schema or "{}"),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _tag(row: Any) -> dict:
    return {"name": row.name, "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at)}


_RECORD = {"property": _property, "object": _object, "tag": _tag}


def _associations(s: Session, namespace_ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {i: [] for i in namespace_ids}
    if not namespace_ids:
        return out
    query = (
        sa.select(
            ASSOCIATIONS.c.namespace_id,
            RESOURCE_TYPES.c.name,
            ASSOCIATIONS.c.prefix,
            ASSOCIATIONS.c.properties_target,
            ASSOCIATIONS.c.created_at,
            ASSOCIATIONS.c.updated_at,
        )
        .join(RESOURCE_TYPES, RESOURCE_TYPES.c.id == ASSOCIATIONS.c.resource_type_id)
        .where(ASSOCIATIONS.c.namespace_id.in_(namespace_ids))
        .order_by(RESOURCE_TYPES.c.name)
    )
    for row in s.execute(query):
        out[row.namespace_id].append(_association(row))
    return out


def _full(s: Session, row: Any) -> dict:
    record = _namespace(row)
    record["resource_type_associations"] = _associations(s, [row.id])[row.id]
    props = s.execute(sa.select(PROPERTIES).where(PROPERTIES.c.namespace_id == row.id).order_by("name"))
    # As stored (upstream's namespace view): with "name" when the property came through the
    # properties API (its body names it), without when it came inline in a namespace.
    record["properties"] = {p.name: json.loads(p.json_schema or "{}") for p in props}
    objs = s.execute(sa.select(OBJECTS).where(OBJECTS.c.namespace_id == row.id).order_by("name"))
    record["objects"] = [_object(o) for o in objs]
    tags = s.execute(sa.select(TAGS).where(TAGS.c.namespace_id == row.id).order_by("name"))
    record["tags"] = [_tag(t) for t in tags]
    return record


# -- row access ------------------------------------------------------------------------------
def _get_namespace(s: Session, ctx: RequestContext, namespace: str) -> Any:
    row = None
    if isinstance(namespace, str) and len(namespace) <= NAME_LENGTH:
        row = s.execute(sa.select(NAMESPACES).where(NAMESPACES.c.namespace == namespace)).first()
    if row is None or not can_see(ctx, row):
        raise exceptions.NotFound(f"Metadata definition namespace={namespace} was not found.")
    return row


def _writable_namespace(s: Session, ctx: RequestContext, namespace: str, deleting: bool = False) -> Any:
    row = _get_namespace(s, ctx, namespace)
    if deleting and row.protected:
        raise exceptions.Forbidden(
            f"Metadata definition namespace {namespace} is protected: its contents cannot be deleted."
        )
    return row


def _touch(s: Session, namespace_id: int, now) -> None:
    s.execute(NAMESPACES.update().where(NAMESPACES.c.id == namespace_id).values(updated_at=now))


def _namespace_values(values: dict, ctx: RequestContext, creating: bool) -> dict:
    row = {k: values[k] for k in _NAMESPACE_COLUMNS if k in values}
    if creating or "namespace" in row:
        _check_name("namespace", row.get("namespace"))
    if "display_name" in row and row["display_name"] is not None and len(row["display_name"]) > NAME_LENGTH:
        raise exceptions.BadRequest(f"display_name is longer than {NAME_LENGTH} characters")
    if creating:
        row.setdefault("visibility", "private")
        row.setdefault("protected", False)
        if not row.get("owner"):
            row["owner"] = ctx.owner or "admin"
    if "visibility" in row and row["visibility"] not in VISIBILITIES:
        raise exceptions.BadRequest(f"Invalid visibility {row['visibility']!r}: must be public or private")
    if "protected" in row and not isinstance(row["protected"], bool):
        raise exceptions.BadRequest("protected must be true or false")
    if "owner" in row and (not isinstance(row["owner"], str) or not row["owner"] or len(row["owner"]) > 255):
        raise exceptions.BadRequest("owner must be 1 to 255 characters")
    return row


# The key of an item's values holding the property's JSON as its namespace's body gave it.
_AS_SENT = "__as_sent__"


def _item_row(kind: str, namespace_id: int, values: dict, now, creating: bool = True) -> dict:
    name = _check_name(kind, values.get("name"))
    row: dict[str, Any] = {"namespace_id": namespace_id, "name": name, "updated_at": now}
    if creating:
        row["created_at"] = now
    if kind == "property":
        # The JSON the client sent, as upstream stores it: a body of the properties API
        # includes its name; an inline property of a new namespace only what it gave.
        schema = values.get(_AS_SENT)
        if schema is None:
            schema = {k: v for k, v in values.items() if k not in ("created_at", "updated_at")}
        row["json_schema"] = json.dumps(schema)
    elif kind == "object":
        row["description"] = values.get("description")
        row["required"] = json.dumps(values.get("required") or [])
        row["json_schema"] = json.dumps(values.get("properties") or {})
    return row


def _insert_items(s: Session, kind: str, namespace_id: int, items: list[dict], now) -> None:
    names = [_check_name(kind, i.get("name")) for i in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise exceptions.Duplicate(f"Duplicate metadef {kind} name(s): {', '.join(duplicates)}")
    if items:
        s.execute(KINDS[kind].insert(), [_item_row(kind, namespace_id, i, now) for i in items])


def _resource_type_id(s: Session, name: str, now) -> int:
    _check_name("resource type", name)
    found = s.execute(sa.select(RESOURCE_TYPES.c.id).where(RESOURCE_TYPES.c.name == name)).scalar()
    if found is not None:
        return found
    result = s.execute(
        RESOURCE_TYPES.insert().values(name=name, protected=False, created_at=now, updated_at=now)
    )
    return result.inserted_primary_key[0]


def _insert_association(s: Session, namespace_id: int, values: dict, now) -> None:
    type_id = _resource_type_id(s, values.get("name"), now)
    exists = s.execute(
        sa.select(ASSOCIATIONS.c.namespace_id).where(
            ASSOCIATIONS.c.namespace_id == namespace_id, ASSOCIATIONS.c.resource_type_id == type_id
        )
    ).first()
    if exists:
        raise exceptions.Duplicate(f"The resource type {values['name']} is already associated")
    for key in ("prefix", "properties_target"):
        if values.get(key) is not None and len(str(values[key])) > NAME_LENGTH:
            raise exceptions.BadRequest(f"{key} is longer than {NAME_LENGTH} characters")
    s.execute(
        ASSOCIATIONS.insert().values(
            namespace_id=namespace_id,
            resource_type_id=type_id,
            prefix=values.get("prefix"),
            properties_target=values.get("properties_target"),
            created_at=now,
            updated_at=now,
        )
    )


def _delete_contents(s: Session, namespace_id: int) -> None:
    for table in (ASSOCIATIONS, PROPERTIES, OBJECTS, TAGS):
        s.execute(table.delete().where(table.c.namespace_id == namespace_id))


def _conflict(exc: IntegrityError, what: str) -> exceptions.GlanceServiceError:
    return exceptions.Duplicate(f"{what} already exists")


class MetadefDatabaseMixin:
    """The ``metadef_*`` data API methods; mixed into ``DatabaseAPI`` (which provides ``self.db``)."""

    db: Any

    # -- namespaces --------------------------------------------------------------------------
    # The arguments' types: db/interface.py.
    def metadef_namespace_get_all(
        self, ctx, filters=None, marker=None, limit=None, sort_key="created_at", sort_dir="desc"
    ) -> list[dict]:
        filters = filters or {}
        if sort_key not in SORT_KEYS:
            raise exceptions.InvalidSortKey(f"Invalid sort key: {sort_key}")
        if sort_dir not in ("asc", "desc"):
            raise exceptions.BadRequest(f"Invalid sort direction: {sort_dir}")
        with self.db.reader() as s:
            query = sa.select(NAMESPACES)
            if not ctx.is_admin:
                seen = [NAMESPACES.c.visibility == "public"]
                if ctx.owner is not None:
                    seen.append(NAMESPACES.c.owner == ctx.owner)
                query = query.where(sa.or_(*seen))
            if filters.get("visibility"):
                query = query.where(NAMESPACES.c.visibility == filters["visibility"])
            if filters.get("resource_types"):
                query = query.where(
                    sa.exists().where(
                        ASSOCIATIONS.c.namespace_id == NAMESPACES.c.id,
                        ASSOCIATIONS.c.resource_type_id == RESOURCE_TYPES.c.id,
                        RESOURCE_TYPES.c.name.in_(list(filters["resource_types"])),
                    )
                )
            column, tie = NAMESPACES.c[sort_key], NAMESPACES.c.id
            if marker is not None:
                try:
                    m = _get_namespace(s, ctx, marker)
                except exceptions.NotFound:
                    raise exceptions.BadRequest(f"Invalid marker: namespace {marker} not found") from None
                value = getattr(m, sort_key)
                after = (
                    sa.or_(column > value, sa.and_(column == value, tie > m.id))
                    if sort_dir == "asc"
                    else sa.or_(column < value, sa.and_(column == value, tie < m.id))
                )
                query = query.where(after)
            order = (column.asc(), tie.asc()) if sort_dir == "asc" else (column.desc(), tie.desc())
            query = query.order_by(*order)
            if limit is not None:
                query = query.limit(max(0, int(limit)))
            rows = s.execute(query).all()
            associations = _associations(s, [r.id for r in rows])
            out = []
            for row in rows:
                record = _namespace(row)
                record["resource_type_associations"] = associations[row.id]
                out.append(record)
            return out

    def metadef_namespace_get(self, ctx: RequestContext, namespace: str) -> dict:
        with self.db.reader() as s:
            return _full(s, _get_namespace(s, ctx, namespace))

    def metadef_namespace_create(self, ctx: RequestContext, values: dict) -> dict:
        row = _namespace_values(values, ctx, creating=True)
        now = _now()
        row.update(created_at=now, updated_at=now)
        try:
            with self.db.writer() as s:
                taken = s.execute(
                    sa.select(NAMESPACES.c.id).where(NAMESPACES.c.namespace == row["namespace"])
                ).first()
                if taken:
                    raise exceptions.Duplicate(
                        f"A metadata definition namespace {row['namespace']} already exists"
                    )
                namespace_id = s.execute(NAMESPACES.insert().values(**row)).inserted_primary_key[0]
                for association in values.get("resource_type_associations") or []:
                    _insert_association(s, namespace_id, association, now)
                props = values.get("properties") or {}
                inline = [{**v, "name": k, _AS_SENT: v} for k, v in props.items()]
                _insert_items(s, "property", namespace_id, inline, now)
                _insert_items(s, "object", namespace_id, list(values.get("objects") or []), now)
                _insert_items(s, "tag", namespace_id, list(values.get("tags") or []), now)
                return _full(s, s.execute(sa.select(NAMESPACES).where(NAMESPACES.c.id == namespace_id)).one())
        except IntegrityError as exc:
            raise _conflict(exc, f"Metadata definition namespace {row['namespace']}") from exc

    def metadef_namespace_update(self, ctx: RequestContext, namespace: str, values: dict) -> dict:
        row = _namespace_values(values, ctx, creating=False)
        row["updated_at"] = _now()
        try:
            with self.db.writer() as s:
                current = _get_namespace(s, ctx, namespace)
                new_name = row.get("namespace", namespace)
                if (
                    new_name != namespace
                    and s.execute(
                        sa.select(NAMESPACES.c.id).where(NAMESPACES.c.namespace == new_name)
                    ).first()
                ):
                    raise exceptions.Duplicate(f"A metadata definition namespace {new_name} already exists")
                s.execute(NAMESPACES.update().where(NAMESPACES.c.id == current.id).values(**row))
                return _full(s, s.execute(sa.select(NAMESPACES).where(NAMESPACES.c.id == current.id)).one())
        except IntegrityError as exc:
            raise _conflict(exc, f"Metadata definition namespace {row.get('namespace')}") from exc

    def metadef_namespace_delete(self, ctx: RequestContext, namespace: str) -> None:
        with self.db.writer() as s:
            row = _get_namespace(s, ctx, namespace)
            if row.protected:
                raise exceptions.Forbidden(
                    f"Metadata definition namespace {namespace} is protected and cannot be deleted."
                )
            _delete_contents(s, row.id)
            s.execute(NAMESPACES.delete().where(NAMESPACES.c.id == row.id))

    # -- resource types ----------------------------------------------------------------------
    def metadef_resource_type_get_all(self, ctx: RequestContext) -> list[dict]:
        with self.db.reader() as s:
            rows = s.execute(sa.select(RESOURCE_TYPES).order_by(RESOURCE_TYPES.c.name)).all()
            return [
                {"name": r.name, "created_at": _iso(r.created_at), "updated_at": _iso(r.updated_at)}
                for r in rows
            ]

    def metadef_association_create(self, ctx: RequestContext, namespace: str, values: dict) -> dict:
        now = _now()
        try:
            with self.db.writer() as s:
                row = _writable_namespace(s, ctx, namespace)
                _insert_association(s, row.id, values, now)
                _touch(s, row.id, now)
                found = _associations(s, [row.id])[row.id]
                return next(a for a in found if a["name"] == values["name"])
        except IntegrityError as exc:
            raise _conflict(exc, f"The association of {values.get('name')}") from exc

    def metadef_association_delete(self, ctx: RequestContext, namespace: str, name: str) -> None:
        with self.db.writer() as s:
            row = _writable_namespace(s, ctx, namespace, deleting=True)
            type_id = s.execute(sa.select(RESOURCE_TYPES.c.id).where(RESOURCE_TYPES.c.name == name)).scalar()
            where = [ASSOCIATIONS.c.namespace_id == row.id, ASSOCIATIONS.c.resource_type_id == type_id]
            if type_id is None or not s.execute(ASSOCIATIONS.delete().where(*where)).rowcount:
                raise exceptions.NotFound(
                    f"Resource type {name} is not associated with namespace {namespace}."
                )
            _touch(s, row.id, _now())

    # -- properties, objects, tags ------------------------------------------------------------
    def metadef_item_create(self, ctx: RequestContext, namespace: str, kind: str, values: dict) -> dict:
        table = _kind_table(kind)
        now = _now()
        try:
            with self.db.writer() as s:
                row = _writable_namespace(s, ctx, namespace)
                name = _check_name(kind, values.get("name"))
                if s.execute(
                    sa.select(table.c.id).where(table.c.namespace_id == row.id, table.c.name == name)
                ).first():
                    raise exceptions.Duplicate(
                        f"A metadef {kind} {name} already exists in namespace {namespace}"
                    )
                item_id = s.execute(
                    table.insert().values(**_item_row(kind, row.id, values, now))
                ).inserted_primary_key[0]
                _touch(s, row.id, now)
                return _RECORD[kind](s.execute(sa.select(table).where(table.c.id == item_id)).one())
        except IntegrityError as exc:
            raise _conflict(exc, f"The metadef {kind} {values.get('name')}") from exc

    def metadef_item_update(
        self, ctx: RequestContext, namespace: str, kind: str, name: str, values: dict
    ) -> dict:
        table = _kind_table(kind)
        now = _now()
        try:
            with self.db.writer() as s:
                row = _writable_namespace(s, ctx, namespace)
                current = s.execute(
                    sa.select(table).where(table.c.namespace_id == row.id, table.c.name == name)
                ).first()
                if current is None:
                    raise exceptions.NotFound(f"Metadef {kind} {name} not found in namespace {namespace}")
                new = _item_row(kind, row.id, values, now, creating=False)
                if (
                    new["name"] != name
                    and s.execute(
                        sa.select(table.c.id).where(
                            table.c.namespace_id == row.id, table.c.name == new["name"]
                        )
                    ).first()
                ):
                    raise exceptions.Duplicate(
                        f"A metadef {kind} {new['name']} already exists in namespace {namespace}"
                    )
                s.execute(table.update().where(table.c.id == current.id).values(**new))
                _touch(s, row.id, now)
                return _RECORD[kind](s.execute(sa.select(table).where(table.c.id == current.id)).one())
        except IntegrityError as exc:
            raise _conflict(exc, f"The metadef {kind} {values.get('name')}") from exc

    def metadef_item_delete(
        self, ctx: RequestContext, namespace: str, kind: str, name: str | None = None
    ) -> None:
        """Delete one item, or with ``name`` None every item of ``kind`` in the namespace."""
        table = _kind_table(kind)
        with self.db.writer() as s:
            row = _writable_namespace(s, ctx, namespace, deleting=True)
            where = [table.c.namespace_id == row.id]
            if name is not None:
                where.append(table.c.name == name)
            removed = s.execute(table.delete().where(*where)).rowcount
            if name is not None and not removed:
                raise exceptions.NotFound(f"Metadef {kind} {name} not found in namespace {namespace}")
            _touch(s, row.id, _now())

    def metadef_tags_set(
        self, ctx: RequestContext, namespace: str, names: list[str], append: bool = False
    ) -> list[dict]:
        """Create tags ``names``: replacing every existing tag, or with ``append`` adding to
        them (``Duplicate`` if one exists already or a name is repeated)."""
        now = _now()
        try:
            with self.db.writer() as s:
                row = _writable_namespace(s, ctx, namespace)
                if append:
                    existing = set(
                        s.execute(sa.select(TAGS.c.name).where(TAGS.c.namespace_id == row.id)).scalars()
                    )
                    clash = sorted(existing & set(names))
                    if clash:
                        raise exceptions.Duplicate(f"Metadef tag(s) already exist: {', '.join(clash)}")
                else:
                    s.execute(TAGS.delete().where(TAGS.c.namespace_id == row.id))
                _insert_items(s, "tag", row.id, [{"name": n} for n in names], now)
                _touch(s, row.id, now)
                rows = s.execute(
                    sa.select(TAGS).where(TAGS.c.namespace_id == row.id, TAGS.c.name.in_(list(names)))
                ).all()
                by_name = {r.name: _tag(r) for r in rows}
                return [by_name[n] for n in names]
        except IntegrityError as exc:
            raise _conflict(exc, "A metadef tag") from exc


def _kind_table(kind: str) -> sa.Table:
    table = KINDS.get(kind)
    if table is None:
        raise exceptions.BadRequest(f"Unknown metadef kind {kind!r}: property, object or tag")
    return table
