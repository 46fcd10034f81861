"""``glance-manage db load_metadefs``: the standard definitions (``glance_service/etc/metadefs``).

Idempotent: a namespace that does not exist is created whole; one that exists gains only the
associations, properties, objects and tags it lacks. Nothing an operator changed or added is
overwritten or removed, so the command can run on every deployment.
"""

from __future__ import annotations

import json
from pathlib import Path

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.images import metadef_schema

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "etc" / "metadefs"


class DefinitionError(Exception):
    """A definitions file that cannot be loaded (the message names the file)."""


def read_definitions(path: Path | str | None = None) -> list[tuple[Path, dict]]:
    """Every ``*.json`` under ``path``, parsed and checked against the namespace schema."""
    directory = Path(path) if path else DEFAULT_PATH
    if not directory.is_dir():
        raise DefinitionError(f"{directory} is not a directory")
    out = []
    for file in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
            metadef_schema.validate("namespace", doc)
        except (ValueError, exceptions.BadRequest) as exc:
            message = exc.message if isinstance(exc, exceptions.GlanceServiceError) else str(exc)
            raise DefinitionError(f"{file}: {message}") from exc
        out.append((file, doc))
    return out


def _merge(data, ctx: RequestContext, doc: dict, current: dict) -> int:
    """Add what ``doc`` has and ``current`` lacks; returns how many items were added."""
    name = doc["namespace"]
    added = 0
    have = {a["name"] for a in current.get("resource_type_associations") or []}
    for association in doc.get("resource_type_associations") or []:
        if association["name"] not in have:
            data.metadef_association_create(ctx, name, association)
            added += 1
    have = set(current.get("properties") or {})
    for prop_name, body in (doc.get("properties") or {}).items():
        if prop_name not in have:
            data.metadef_item_create(ctx, name, "property", {**body, "name": prop_name})
            added += 1
    for kind, key in (("object", "objects"), ("tag", "tags")):
        have = {item["name"] for item in current.get(key) or []}
        for item in doc.get(key) or []:
            if item["name"] not in have:
                data.metadef_item_create(ctx, name, kind, item)
                added += 1
    return added


def load(data, path: Path | str | None = None) -> dict[str, int]:
    """Load the definitions through ``data`` (a ``DataAPI``) as an administrator."""
    ctx = RequestContext.admin()
    counts = {"files": 0, "created": 0, "updated": 0, "unchanged": 0, "items_added": 0}
    for _file, doc in read_definitions(path):
        counts["files"] += 1
        values = dict(doc)
        values.setdefault("owner", "admin")
        try:
            current = data.metadef_namespace_get(ctx, doc["namespace"])
        except exceptions.NotFound:
            data.metadef_namespace_create(ctx, values)
            counts["created"] += 1
            continue
        added = _merge(data, ctx, doc, current)
        counts["items_added"] += added
        counts["updated" if added else "unchanged"] += 1
    return counts
