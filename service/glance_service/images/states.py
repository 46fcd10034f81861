"""The image status state machine: one table, one place.

Transitions are the reference's (section 3.1). Which HTTP code a refused call gets depends
on the call (upload to an active image is 409, deactivate from the wrong status is 403),
so callers choose the exception; this module only answers whether a move is legal.
"""

from __future__ import annotations

from glance_service import exceptions

QUEUED = "queued"
SAVING = "saving"
ACTIVE = "active"
KILLED = "killed"
DELETED = "deleted"
PENDING_DELETE = "pending_delete"
DEACTIVATED = "deactivated"
UPLOADING = "uploading"
IMPORTING = "importing"

ALL = (QUEUED, SAVING, ACTIVE, KILLED, DELETED, PENDING_DELETE, DEACTIVATED, UPLOADING, IMPORTING)

TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({SAVING, UPLOADING, IMPORTING, ACTIVE, DELETED}),
    SAVING: frozenset({ACTIVE, KILLED, DELETED, QUEUED}),
    UPLOADING: frozenset({IMPORTING, QUEUED, DELETED}),
    IMPORTING: frozenset({ACTIVE, DELETED, QUEUED}),
    ACTIVE: frozenset({PENDING_DELETE, DELETED, DEACTIVATED}),
    KILLED: frozenset({DELETED}),
    PENDING_DELETE: frozenset({DELETED, ACTIVE}),
    DELETED: frozenset(),
    DEACTIVATED: frozenset({ACTIVE, DELETED}),
}

# Moving from these to a data-bearing status needs disk_format and container_format set.
_NEEDS_FORMATS_FROM = frozenset({QUEUED, UPLOADING})
_DATA_BEARING = frozenset({SAVING, ACTIVE, IMPORTING})


def is_allowed(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def check(
    image: dict, new: str, error: type[exceptions.GlanceServiceError] = exceptions.ImageStatusConflict
) -> None:
    """Raise ``error`` unless ``image`` may move to ``new``; ``BadRequest`` when the move
    needs formats the image does not have yet (upstream: ValueError → 400 on upload)."""
    current = image["status"]
    if not is_allowed(current, new):
        raise error(f"Image status transition from {current} to {new} is not allowed")
    if current in _NEEDS_FORMATS_FROM and new in _DATA_BEARING:
        missing = [k for k in ("disk_format", "container_format") if not image.get(k)]
        if missing:
            raise exceptions.BadRequest(
                "Properties disk_format, container_format must be set prior to saving data."
            )


def reset_on_queued(values: dict) -> dict:
    """Returning to ``queued`` forgets the data's size (upstream resets size and virtual_size)."""
    if values.get("status") == QUEUED:
        values.setdefault("size", None)
        values.setdefault("virtual_size", None)
    return values
