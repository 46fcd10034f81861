"""Metadef records → response bodies (Glance's field names, ``self``/``schema`` links)."""

from __future__ import annotations

import urllib.parse

from glance_service.api.common import isotime

NS_PATH = "/v2/metadefs/namespaces"


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe=":")


def _stamps(record: dict, out: dict) -> dict:
    for key in ("created_at", "updated_at"):
        if record.get(key):
            out[key] = isotime(record[key])
    return out


def association(record: dict) -> dict:
    out = {"name": record["name"]}
    for key in ("prefix", "properties_target"):
        if record.get(key) is not None:
            out[key] = record[key]
    return _stamps(record, out)


def prop(record: dict, prefix: str = "") -> dict:
    out = {k: v for k, v in record.items() if k not in ("created_at", "updated_at")}
    out["name"] = prefix + record["name"]
    return out


def properties(definitions: dict, prefix: str = "") -> dict:
    return {prefix + name: dict(body) for name, body in definitions.items()}


def obj(namespace: str, record: dict) -> dict:
    out = {"name": record["name"]}
    if record.get("description") is not None:
        out["description"] = record["description"]
    out["required"] = record.get("required") or []  # upstream shows [] too
    out["properties"] = record.get("properties") or {}
    _stamps(record, out)
    out["schema"] = "/v2/schemas/metadefs/object"
    out["self"] = f"{NS_PATH}/{quote(namespace)}/objects/{quote(record['name'])}"
    return out


def tag(record: dict) -> dict:
    return _stamps(record, {"name": record["name"]})


def namespace(record: dict, prefix: str = "") -> dict:
    """A namespace as shown and listed; contents only when the record carries them."""
    out = {
        "namespace": record["namespace"],
        "visibility": record["visibility"],
        "protected": record["protected"],
        "owner": record["owner"],
    }
    for key in ("display_name", "description"):
        if record.get(key) is not None:
            out[key] = record[key]
    _stamps(record, out)
    out["schema"] = "/v2/schemas/metadefs/namespace"
    out["self"] = f"{NS_PATH}/{quote(record['namespace'])}"
    if record.get("resource_type_associations"):
        out["resource_type_associations"] = [association(a) for a in record["resource_type_associations"]]
    if record.get("properties"):
        out["properties"] = properties(record["properties"], prefix)
    if record.get("objects"):
        out["objects"] = [obj(record["namespace"], o) for o in record["objects"]]
    if record.get("tags"):
        # as upstream's namespace show: a tag's name only (GET .../tags shows the times)
        out["tags"] = [{"name": t["name"]} for t in record["tags"]]
    return out
