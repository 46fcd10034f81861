"""Image PATCH: parse both JSON-patch media types, then apply the changes to an image record.

``parse`` checks the document (syntax, pointers, read-only/reserved roots, schema of each
value); ``apply`` checks each change against the current image (which attributes exist,
which may be removed, which the status allows) and returns one ``Update`` to save. Policy
decisions (modify_image, visibility, location rules) stay with the caller; ``Update`` says
which of them the changes need.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Protocol

from glance_service import exceptions
from glance_service.images.image_schema import ImageSchema

MEDIA_V20 = "application/openstack-images-v2.0-json-patch"
MEDIA_V21 = "application/openstack-images-v2.1-json-patch"
MEDIA_TYPES = {MEDIA_V20: 4, MEDIA_V21: 10}
ACCEPT_PATCH = ", ".join(sorted(MEDIA_TYPES))

OPERATIONS = ("add", "remove", "replace")

# Sent on create: these give "read-only" before the body is validated (``stores`` too, which
# is not in READ_ONLY), then CREATE_READ_ONLY's after it, in this order.
CREATE_DISALLOWED = ("direct_url", "self", "file", "schema", "stores")
CREATE_READ_ONLY = (
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "os_hash_algo",
    "os_hash_value",
)
# A patch may not change these.
READ_ONLY = frozenset({*CREATE_READ_ONLY, *CREATE_DISALLOWED, "id"} - {"stores"})
RESERVED = frozenset({"location", "deleted", "deleted_at"})
RESERVED_PREFIX = "os_glance"

# Attributes of the image itself (not custom properties): set by add/replace, never removed.
BASE_ATTRIBUTES = frozenset(
    {
        "name",
        "visibility",
        "protected",
        "os_hidden",
        "owner",
        "container_format",
        "disk_format",
        "min_disk",
        "min_ram",
        "tags",
        "locations",
    }
)
FORMAT_ATTRIBUTES = frozenset({"container_format", "disk_format"})
FORMAT_CHANGE_STATUSES = frozenset({"queued", "importing"})
INT_MAX = 2**31 - 1
_PATH_DEPTH = {"locations": {"add": 2, "remove": 2, "replace": 1}}


@dataclasses.dataclass
class Change:
    op: str
    path: list[str]
    value: object = None
    draft: int = 10

    @property
    def root(self) -> str:
        return self.path[0]


@dataclasses.dataclass
class Update:
    """What ``apply`` decided: column values, the full custom property set, tags, locations."""

    values: dict = dataclasses.field(default_factory=dict)
    properties: dict = dataclasses.field(default_factory=dict)
    properties_changed: bool = False
    tags: list[str] | None = None
    # ("add", position or "-", {"url", "metadata", "validation_data"?}) / ("remove", index) /
    # ("replace", [locations])
    location_ops: list[tuple] = dataclasses.field(default_factory=list)
    visibility: str | None = None
    needs_modify: bool = False


class Protect(Protocol):
    """Property protections for one caller (``images.property_protections.Checker``)."""

    def can(self, name: str, operation: str) -> bool: ...

    def require(self, name: str, operation: str) -> None: ...


def is_reserved(name: str) -> bool:
    return name in RESERVED or name.startswith(RESERVED_PREFIX)


def check_attribute_access(name: str) -> None:
    """403 for read-only and reserved roots (shared by PATCH and create)."""
    if name in READ_ONLY:
        raise exceptions.ReadOnlyProperty(f"Attribute '{name}' is read-only.")
    if is_reserved(name):
        raise exceptions.ReservedProperty(f"Attribute '{name}' is reserved.")


def check_int_range(name: str, value: object) -> None:
    """min_disk/min_ram: not negative (Glance's setter) and within the DB column (400)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise exceptions.BadRequest(
                f"Invalid value '{value}' for parameter '{name}': Cannot be a negative value"
            )
        if value > INT_MAX:
            raise exceptions.BadRequest(f"Invalid value '{value}' for parameter '{name}': value too large")


# -- parsing ----------------------------------------------------------------------------


def media_draft(content_type: str | None) -> int:
    """JSON-schema draft of the patch media type, or 415 with ``Accept-Patch``."""
    draft = MEDIA_TYPES.get((content_type or "").split(";", 1)[0].strip().lower())
    if draft is None:
        raise exceptions.UnsupportedMediaType(
            f"Image PATCH expects Content-Type one of: {ACCEPT_PATCH}", accept_patch=ACCEPT_PATCH
        )
    return draft


def decode_pointer(pointer: object) -> list[str]:
    if not isinstance(pointer, str):
        raise exceptions.InvalidJsonPatch("Pointer must be a string.")
    if not pointer.startswith("/"):
        raise exceptions.InvalidJsonPatch(f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        raise exceptions.InvalidJsonPatch(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise exceptions.InvalidJsonPatch(f'Pointer `{pointer}` end with "/".')
    if pointer[1:].strip() == "/":
        raise exceptions.InvalidJsonPatch(f"Pointer `{pointer}` does not contains valid token.")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise exceptions.InvalidJsonPatch(
            f'Pointer `{pointer}` contains "~" not part of a recognized escape sequence.'
        )
    return [part.replace("~1", "/").replace("~0", "~").strip() for part in pointer.lstrip("/").split("/")]


def _operation(raw: dict, draft: int) -> tuple[str, object]:
    available = ", ".join(OPERATIONS)
    if draft == 10:
        op = raw.get("op")
        if op is None:
            raise exceptions.InvalidJsonPatch(
                f"Unable to find `op` in JSON Schema change. It must be one of the following: {available}."
            )
        if op not in OPERATIONS:
            raise exceptions.InvalidJsonPatch(
                f"Invalid operation: `{op}`. It must be one of the following: {available}."
            )
        if "path" not in raw:
            raise exceptions.InvalidJsonPatch("Unable to find 'path' in JSON Schema change")
        return op, raw["path"]
    found = [key for key in OPERATIONS if key in raw]
    if len(found) > 1:
        raise exceptions.InvalidJsonPatch(
            'Operation objects must contain only one member named "add", "remove", or "replace".'
        )
    if not found:
        raise exceptions.InvalidJsonPatch(
            'Operation objects must contain exactly one member named "add", "remove", or "replace".'
        )
    return found[0], raw[found[0]]


def parse(content_type: str | None, body: object, schema: ImageSchema) -> list[Change]:
    """Parse a PATCH body (already JSON-decoded) of either media type into changes."""
    draft = media_draft(content_type)
    if not isinstance(body, list):
        raise exceptions.InvalidJsonPatch("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise exceptions.InvalidJsonPatch("Operations must be JSON objects.")
        op, pointer = _operation(raw, draft)
        path = decode_pointer(pointer)
        depth = _PATH_DEPTH.get(path[0], {}).get(op, 1)
        if len(path) != depth:
            raise exceptions.InvalidJsonPatch(f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'")
        change = Change(op=op, path=path, draft=draft)
        if op != "remove":
            if "value" not in raw:
                raise exceptions.InvalidJsonPatch(f'Operation "{op}" requires a member named "value".')
            change.value = raw["value"]
        _validate_change(change, schema)
        changes.append(change)
    return changes


def _validate_change(change: Change, schema: ImageSchema) -> None:
    check_attribute_access(change.root)
    if change.op == "remove":
        return
    if len(change.path) == 1:
        partial = {change.root: change.value}
    else:
        # ``/locations/N``: one element of an array property.
        partial = {change.root: [change.value]}
    schema.validate(partial)
    check_int_range(change.root, change.value)
    if len(change.root) > 255:
        raise exceptions.BadRequest("Custom property should not be greater than 255 characters.")


# -- applying -----------------------------------------------------------------------------


def apply(image: dict, changes: list[Change], *, is_admin: bool, protect: Protect | None = None) -> Update:
    """Apply ``changes`` in order to a copy of ``image``; raise on the first refused one.

    ``protect``: the caller's property protections (``property_protections.Checker``), None
    when off. As upstream, a property the caller may not read is treated as absent (``replace``
    and ``remove`` answer 409, ``add`` creates it), and is kept as it is."""
    current = {k: image.get(k) for k in BASE_ATTRIBUTES if k != "locations"}
    props = copy.deepcopy(image.get("properties") or {})
    if protect is None:
        present = props.__contains__
    else:

        def present(name: str) -> bool:
            return name in props and protect.can(name, "read")

    update = Update()
    tags_changed = False
    for change in changes:
        root = change.root
        if root == "locations":
            update.location_ops.append(_location_op(change))
            continue
        update.needs_modify = True
        if change.op == "remove":
            if root in BASE_ATTRIBUTES:
                raise exceptions.Forbidden(f"Property {root} may not be removed.")
            if not present(root):
                raise exceptions.Conflict(f"Property {root} does not exist.")
            if protect is not None:
                protect.require(root, "delete")
            del props[root]
            update.properties_changed = True
            continue
        value = change.value
        if change.op == "add" and change.draft == 4 and (root in BASE_ATTRIBUTES or present(root)):
            raise exceptions.Conflict(f"Property {root} already present.")
        if root in BASE_ATTRIBUTES:
            if root in FORMAT_ATTRIBUTES and image.get("status") not in FORMAT_CHANGE_STATUSES:
                raise exceptions.InvalidImageStatusTransition(
                    f"Attribute {root} can be only replaced for a queued image."
                )
            if root == "owner" and not is_admin:
                # Glance checks only ``replace``; ``add /owner`` sets the same attribute, so
                # both are refused: only admins move images between projects.
                raise exceptions.Forbidden("Owner can't be updated by non admin.")
            if root == "visibility":
                update.visibility = value
            if root == "tags":
                tags_changed = True
            current[root] = value
        elif change.op == "replace" and not present(root):
            raise exceptions.Conflict(f"Property {root} does not exist.")
        else:
            if protect is not None:
                protect.require(root, "update" if present(root) else "create")
            props[root] = value
            update.properties_changed = True
    for key, value in current.items():
        if key == "tags":
            continue
        if value != image.get(key):
            update.values[key] = value
    if tags_changed:
        update.tags = sorted(set(current["tags"] or []))
    update.properties = props
    return update


def _location_op(change: Change) -> tuple:
    if change.op == "replace":
        if not change.value:
            raise exceptions.Forbidden("Cannot set locations to empty list.")
        return ("replace", change.value)
    position = change.path[1]
    if change.op == "add":
        if position != "-":
            position = _location_index(position)
        return ("add", position, change.value)
    return ("remove", _location_index(position))


def _location_index(text: str) -> int:
    try:
        index = int(text)
    except ValueError:
        raise exceptions.BadRequest(f"Invalid position for adding a location: {text}") from None
    if index < 0:
        raise exceptions.BadRequest(f"Invalid position for adding a location: {text}")
    return index
