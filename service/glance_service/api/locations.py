"""PATCH on ``/locations`` (only with ``show_multiple_locations``): add, remove, replace.

Glance's rules: adding needs ``set_image_location`` and a queued or active image (409
otherwise), and a queued image becomes active once it has a location; removing needs
``delete_image_location`` (admin), an active image, and never removes the last location
(403), and removes the location's data from its store first (``remove_location``);
replacing may only change the metadata of the current URLs (400 otherwise).
"""

from __future__ import annotations

import urllib.parse

from glance_service import exceptions
from glance_service.api.wiring import Services
from glance_service.context import RequestContext
from glance_service.images import states

# Stores whose locations a client may register by URL (glance_store's external schemes);
# ``file://`` is refused: a client must not point an image at a path on the API host.
EXTERNAL_SCHEMES = frozenset(
    {
        "http",
        "https",
        "rbd",
        "swift",
        "swift+http",
        "swift+https",
        "swift+config",
        "s3",
        "s3+http",
        "s3+https",
        "cinder",
        "vsphere",
    }
)


def _check_url(url: object) -> str:
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in EXTERNAL_SCHEMES:
        raise exceptions.BadRequest(f"Invalid location: {url}")
    return url


def apply(svc: Services, ctx: RequestContext, image: dict, ops: list[tuple]) -> None:
    """Perform the location changes of one PATCH (before the other values are saved)."""
    if not svc.conf.show_multiple_locations:
        raise exceptions.Forbidden("It's not allowed to update locations if locations are invisible.")
    image_id = image["id"]
    current = [loc for loc in image.get("locations") or [] if loc.get("status", "active") == "active"]
    status = image["status"]
    quota = svc.conf.image_location_quota
    for op in ops:
        if op[0] == "add":
            svc.policy.enforce_image(ctx, "set_image_location", image)
            if status not in ("queued", "active"):
                raise exceptions.ImageStatusConflict(
                    f"Image status {status} does not allow adding locations."
                )
            value = op[2]
            url = _check_url(value.get("url"))
            if any(loc["url"] == url for loc in current):
                raise exceptions.BadRequest(f"The location {url} is already present.")
            if 0 <= quota < len(current) + 1:
                raise exceptions.LimitExceeded(f"Maximum number of locations exceeded ({quota}).")
            if op[1] != "-" and op[1] > len(current):
                raise exceptions.BadRequest(f"Invalid position for adding a location: {op[1]}")
            if status == "queued":
                states.check(image, states.ACTIVE, exceptions.ImageStatusConflict)
            added = svc.data.image_location_add(ctx, image_id, url, value.get("metadata") or {})
            current.append(added)
            if status == "queued":
                svc.data.image_update(ctx, image_id, _validation_values(value), from_state="queued")
                svc.data.image_update(ctx, image_id, {"status": states.ACTIVE}, from_state="queued")
                status = states.ACTIVE
        elif op[0] == "remove":
            svc.policy.enforce_image(ctx, "delete_image_location", image)
            if status != "active":
                raise exceptions.ImageStatusConflict(
                    "It's only allowed to delete locations of an active image."
                )
            index = op[1]
            if index >= len(current):
                raise exceptions.BadRequest(f"Invalid location index {index}.")
            if len(current) == 1:
                raise exceptions.Forbidden("Cannot remove last location in the image.")
            remove_location(svc, ctx, image_id, current[index])
            current.pop(index)
        else:
            svc.policy.enforce_image(ctx, "set_image_location", image)
            if status not in ("queued", "active"):
                raise exceptions.ImageStatusConflict(
                    f"Image status {status} does not allow changing locations."
                )
            new = op[1]
            if [_check_url(loc.get("url")) for loc in new] != [loc["url"] for loc in current]:
                raise exceptions.BadRequest("Only the metadata of the existing locations may be replaced.")
            for loc, value in zip(current, new, strict=True):
                svc.data.image_location_update(
                    ctx, image_id, loc["id"], {"metadata": value.get("metadata") or {}}
                )


def remove_location(svc: Services, ctx: RequestContext, image_id: str, location: dict) -> None:
    """Remove one location's data from its store, then its record.

    In this order nothing is ever lost: a store that refuses (``InUseByStore``, 409: RBD with
    copy-on-write clones; or unreachable, 503) leaves the location and its data as they were;
    a process that dies between the two steps leaves a record whose data is gone, and the
    next removal finishes it (missing data is not an error for any store)."""
    svc.stores.delete(location["url"], (location.get("metadata") or {}).get("store"))
    try:
        svc.data.image_location_delete(ctx, image_id, location["id"])
    except exceptions.LocationNotFound:
        pass  # a concurrent removal recorded it first


def _validation_values(value: dict) -> dict:
    data = value.get("validation_data") or {}
    return {k: data[k] for k in ("checksum", "os_hash_algo", "os_hash_value") if k in data}
