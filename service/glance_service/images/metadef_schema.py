"""The metadef JSON schemas, published at ``/v2/schemas/metadefs/*`` and used to validate bodies.

``name`` values are Glance's (reference 1.8): note ``resource_type`` →
``resource_type_association``.
"""

from __future__ import annotations

import copy
import functools

import jsonschema

from glance_service import exceptions

_TYPES = ["array", "boolean", "integer", "number", "object", "string", "null"]
_STAMP = {"type": "string", "readOnly": True, "format": "date-time"}
_STRING_ARRAY = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
_POSITIVE = {"type": "integer", "minimum": 0}
_NAME = {"type": "string", "maxLength": 80}
_LINK = {"type": "string", "readOnly": True}


def _record(name: str, required: str, properties: dict) -> dict:
    """A metadef record's schema: a closed object with its ``required`` key and timestamps."""
    return {
        "name": name,
        "type": "object",
        "required": [required],
        "additionalProperties": False,
        "properties": {**properties, "created_at": _STAMP, "updated_at": _STAMP},
    }


def _property_body() -> dict:
    """A property definition (a JSON-schema fragment) without its name."""
    return {
        "type": "object",
        "required": ["title", "type"],
        "additionalProperties": False,
        "properties": {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "operators": _STRING_ARRAY,
            "type": {"type": "string", "enum": _TYPES},
            "minimum": {"type": "number"},
            "maximum": {"type": "number"},
            "maxLength": _POSITIVE,
            "minLength": _POSITIVE,
            "pattern": {"type": "string", "format": "regex"},
            "enum": {"type": "array"},
            "readonly": {"type": "boolean"},
            "default": {},
            "items": {
                "type": "object",
                "properties": {"type": {"type": "string", "enum": _TYPES}, "enum": {"type": "array"}},
            },
            "maxItems": _POSITIVE,
            "minItems": _POSITIVE,
            "uniqueItems": {"type": "boolean", "default": False},
            "additionalItems": {"type": "boolean"},
        },
    }


def property_schema() -> dict:
    schema = _property_body()
    schema["properties"] = {"name": _NAME, **schema["properties"]}
    schema["required"] = ["name", "title", "type"]
    return {"name": "property", **schema}


def _properties_map() -> dict:
    return {"type": "object", "additionalProperties": _property_body()}


def object_schema() -> dict:
    return _record(
        "object",
        "name",
        {
            "name": _NAME,
            "description": {"type": "string"},
            "required": _STRING_ARRAY,
            "properties": _properties_map(),
            "schema": _LINK,
            "self": _LINK,
        },
    )


def tag_schema() -> dict:
    return _record("tag", "name", {"name": _NAME})


def association_schema() -> dict:
    return _record(
        "resource_type_association",
        "name",
        {
            "name": {**_NAME, "description": "Resource type name, e.g. OS::Nova::Flavor"},
            "prefix": _NAME,
            "properties_target": _NAME,
        },
    )


def namespace_schema() -> dict:
    def _nested(schema: dict) -> dict:
        schema = copy.deepcopy(schema)
        schema.pop("name")
        return schema

    return _record(
        "namespace",
        "namespace",
        {
            "namespace": _NAME,
            "display_name": _NAME,
            "description": {"type": "string", "maxLength": 500},
            "visibility": {"type": "string", "enum": ["public", "private"]},
            "protected": {"type": "boolean"},
            "owner": {"type": "string", "maxLength": 255},
            "schema": _LINK,
            "self": _LINK,
            "resource_type_associations": {"type": "array", "items": _nested(association_schema())},
            "properties": _properties_map(),
            "objects": {"type": "array", "items": _nested(object_schema())},
            "tags": {"type": "array", "items": _nested(tag_schema())},
        },
    )


def _collection(name: str, key: str, item: dict, paged: bool = False) -> dict:
    item = copy.deepcopy(item)
    item.pop("name", None)
    properties: dict = {key: {"type": "array", "items": item}, "schema": {"type": "string"}}
    if paged:
        properties.update(first={"type": "string"}, next={"type": "string"})
    return {"name": name, "type": "object", "properties": properties}


def namespaces_schema() -> dict:
    return _collection("namespaces", "namespaces", namespace_schema(), paged=True)


def associations_schema() -> dict:
    return _collection("resource_type_associations", "resource_type_associations", association_schema())


def properties_schema() -> dict:
    body = _property_body()
    body["properties"] = {"name": _NAME, **body["properties"]}
    return {
        "name": "properties",
        "type": "object",
        "properties": {"properties": {"type": "object", "additionalProperties": body}},
    }


def objects_schema() -> dict:
    return _collection("objects", "objects", object_schema())


def tags_schema() -> dict:
    return _collection("tags", "tags", tag_schema())


PUBLISHED = {
    "namespace": namespace_schema,
    "namespaces": namespaces_schema,
    "resource_type": association_schema,
    "resource_types": associations_schema,
    "property": property_schema,
    "properties": properties_schema,
    "object": object_schema,
    "objects": objects_schema,
    "tag": tag_schema,
    "tags": tags_schema,
}


@functools.cache
def _validator(which: str) -> jsonschema.protocols.Validator:
    schema = PUBLISHED[which]()
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def validate(which: str, body: object) -> dict:
    """``body`` against the schema ``which``: 400 naming the first problem."""
    if not isinstance(body, dict):
        raise exceptions.BadRequest("Request body must be a JSON object.")
    error = jsonschema.exceptions.best_match(_validator(which).iter_errors(body))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise exceptions.SchemaValidationError(
            f"Provided object does not match schema '{PUBLISHED[which]()['name']}': {error.message}"
            + (f" (at {where})" if where else "")
        )
    return body
