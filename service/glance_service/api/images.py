"""``/v2/images`` and ``/v2/images/{id}``: create, list, show, update (PATCH), delete."""

from __future__ import annotations

import urllib.parse

import webob
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.api import locations as locations_mod
from glance_service.api import stage_proxy
from glance_service.api.common import json_response, no_content, read_json
from glance_service.api.image_views import ImageView
from glance_service.api.wiring import Services
from glance_service.common import notifications
from glance_service.context import RequestContext
from glance_service.images import filters as filters_mod
from glance_service.images import patch as patch_mod
from glance_service.images import quotas, unified_limits

LOG = logging.getLogger(__name__)

# Create: these keys become image columns; every other key is a custom property.
_CREATE_COLUMNS = ("id", *sorted(patch_mod.BASE_ATTRIBUTES - {"tags", "locations"}))


def _view(svc: Services, ctx: RequestContext | None = None):
    if svc.view is None:
        svc.view = ImageView.from_conf(svc.conf)
    view = svc.view
    if svc.protections is not None and ctx is not None:
        view = _readable_only(view, svc.protections.for_context(ctx))
    multistore = svc.stores is not None and getattr(svc.stores, "enabled", None)
    if multistore:
        view = _with_stores(svc, view)
    shows_locations = multistore or svc.view.show_locations or svc.view.show_direct_url
    if ctx is None or ctx.is_admin or not shows_locations:
        return view
    return _deactivated_hidden(view)


def _deactivated_hidden(view):
    """As upstream's database layer: a deactivated image shows no locations (hence no
    ``direct_url`` and no ``stores``) to a caller who is not an admin."""

    def serialise(image: dict) -> dict:
        if image.get("status") == "deactivated":
            image = dict(image, locations=[])
        return view(image)

    return serialise


def _readable_only(view, checker):
    """Property protections: the properties the caller may not read are not shown."""

    def serialise(image: dict) -> dict:
        properties = image.get("properties")
        if properties:
            image = {**image, "properties": checker.readable(properties)}
        return view(image)

    return serialise


def _with_stores(svc: Services, view):
    """Multi-store: images also show ``stores``, the stores holding their data (Glance 2.8+)."""
    from glance_service.api.stores import image_stores

    def serialise(image: dict) -> dict:
        out = view(image)
        held = image_stores(svc, image)
        if held:
            out["stores"] = ",".join(held)
        return out

    return serialise


def get_visible_image(svc: Services, ctx: RequestContext, image_id: str) -> dict:
    """The image if the caller may see it (data-layer visibility, then ``get_image``), else 404."""
    image = svc.data.image_get(ctx, image_id)
    svc.policy.enforce_image(ctx, "get_image", image)
    return image


# -- create -----------------------------------------------------------------------------------


def _create_values(body: object, svc: Services) -> dict:
    if not isinstance(body, dict):
        raise exceptions.BadRequest("Request body must be a JSON object.")
    for key in patch_mod.CREATE_DISALLOWED:
        if key in body:
            raise exceptions.ReadOnlyProperty(f"Attribute '{key}' is read-only.")
    svc.schema.validate(body)
    body = dict(body)
    tags = body.pop("tags", [])
    values = {key: body.pop(key) for key in _CREATE_COLUMNS if key in body}
    for key in ("min_disk", "min_ram"):
        patch_mod.check_int_range(key, values.get(key))
    for key in body:
        if len(key) > 255:
            raise exceptions.BadRequest("Custom property should not be greater than 255 characters.")
        if key == "locations" or patch_mod.is_reserved(key):
            raise exceptions.ReservedProperty(f"Attribute '{key}' is reserved.")
    for key in patch_mod.CREATE_READ_ONLY:
        if key in body:
            raise exceptions.ReadOnlyProperty(f"Attribute '{key}' is read-only.")
    quotas.check_properties(svc.conf, body)
    tags = sorted(set(tags))
    quotas.check_tags(svc.conf, tags)
    values["properties"] = body
    values["tags"] = tags
    return values


def create(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    values = _create_values(read_json(req), svc)
    owner = values.get("owner", ctx.project_id)
    values["owner"] = owner
    values.setdefault("visibility", "shared")
    target = {"project_id": owner, "owner": owner, "visibility": values["visibility"]}
    if not svc.policy.check_target(ctx, "add_image", target):
        if owner != ctx.project_id:
            raise exceptions.Forbidden(f"You are not permitted to create images owned by '{owner}'.")
        raise exceptions.Forbidden("You are not authorized to complete add_image action.")
    svc.policy.enforce_visibility(ctx, values["visibility"], target)
    if svc.protections is not None:
        svc.protections.for_context(ctx).check_create(values["properties"])
    values["status"] = "queued"
    unified_limits.enforce(svc.conf, svc.data, ctx, unified_limits.IMAGE_COUNT_TOTAL, 1)
    image = svc.data.image_create(ctx, values)
    notifications.of(svc).image("image.create", image)
    resp = json_response(_view(svc, ctx)(image), status=201)
    resp.headers["Location"] = req.host_url + f"/v2/images/{image['id']}"
    methods = svc.conf.enabled_import_methods
    if methods:
        resp.headers["OpenStack-image-import-methods"] = ",".join(methods)
    if getattr(svc.stores, "enabled", None):
        resp.headers["OpenStack-image-store-ids"] = ",".join(svc.stores.enabled)
    return resp


# -- read ---------------------------------------------------------------------------------------


def show(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    return json_response(_view(svc, ctx)(get_visible_image(svc, ctx, image_id)))


def index(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    svc.policy.enforce_target(ctx, "get_images", {"project_id": ctx.project_id})
    params = list(req.GET.items())
    query = filters_mod.parse(params, svc.conf.limit_param_default, svc.conf.api_limit_max)
    try:
        found = svc.data.image_get_all(
            ctx,
            filters=query.filters,
            marker=query.marker,
            limit=query.limit,
            sort_keys=query.sort_keys,
            sort_dirs=query.sort_dirs,
        )
    except exceptions.NotFound as exc:
        # An unknown or invisible marker (Glance maps NotFound to 400 here).
        raise exceptions.InvalidMarker(exc.message) from None
    visible = svc.policy.image_filter(ctx, "get_image")
    images = [image for image in found if visible(image)]
    view = _view(svc, ctx)
    without_marker = [(k, v) for k, v in params if k != "marker"]
    body: dict = {
        "images": [view(image) for image in images],
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    }
    if without_marker:
        body["first"] += "?" + urllib.parse.urlencode(without_marker)
    # Glance pages on what the data layer returned, before the policy filter.
    if images and len(found) == query.limit:
        body["next"] = "/v2/images?" + urllib.parse.urlencode(without_marker + [("marker", images[-1]["id"])])
    return json_response(body)


# -- update -------------------------------------------------------------------------------------


def update(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    patch_mod.media_draft(req.content_type)
    changes = patch_mod.parse(req.content_type, read_json(req), svc.schema)
    image = svc.data.image_get(ctx, image_id)
    if not changes:
        svc.policy.enforce_image(ctx, "get_image", image)
        return json_response(_view(svc, ctx)(image))
    if any(change.root != "locations" for change in changes):
        svc.policy.enforce_image(ctx, "modify_image", image)
    protect = None if svc.protections is None else svc.protections.for_context(ctx)
    upd = patch_mod.apply(image, changes, is_admin=ctx.is_admin, protect=protect)
    if upd.visibility is not None:
        target = {"project_id": image.get("owner"), "owner": image.get("owner"), "visibility": upd.visibility}
        svc.policy.enforce_visibility(ctx, upd.visibility, target)
    if upd.properties_changed:
        quotas.check_properties(svc.conf, upd.properties, image.get("properties") or {})
    if upd.tags is not None:
        quotas.check_tags(svc.conf, upd.tags, image.get("tags") or [])
    values = dict(upd.values)
    if upd.properties_changed:
        values["properties"] = upd.properties
    if upd.tags is not None:
        values["tags"] = upd.tags
    if upd.location_ops:
        locations_mod.apply(svc, ctx, image, upd.location_ops)
    if values or upd.location_ops:
        image = svc.data.image_update(ctx, image_id, values, purge_props=upd.properties_changed)
        notifications.of(svc).image("image.update", image)
    return json_response(_view(svc, ctx)(image))


# -- delete -------------------------------------------------------------------------------------


def delete(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    """Delete an image: its data first, location by location, then the record.

    A store that refuses to delete (``InUseByStore``: RBD with copy-on-write clones) or cannot
    be reached answers the error and keeps the image, listed and usable, with the locations
    it still has: upstream's order (the data, then ``image_repo.remove``). A location whose
    data is already gone is no obstacle, so a delete cut short is finished by the next one."""
    image = svc.data.image_get(ctx, image_id)
    svc.policy.enforce_image(ctx, "delete_image", image)
    if image.get("protected"):
        raise exceptions.ProtectedImageDelete(f"Image {image_id} is protected and cannot be deleted.")
    if image.get("status") == "deleted":
        raise exceptions.ImageNotFound(f"No image found with ID {image_id}")
    host = stage_proxy.stage_host(svc.conf, image, req.headers)
    if host is not None:
        # Staged on another API node: that node deletes it, and its staged data with it.
        try:
            answer = stage_proxy.forward(req, ctx, host)
        except exceptions.StageHostFailed:
            # As upstream: the stage node cannot be reached, the delete goes on here (its staged
            # data stays on that node). Read the image again: it may be gone meanwhile (404).
            image = svc.data.image_get(ctx, image_id)
        else:
            resp = no_content()
            if answer.request_id:
                resp.headers["x-openstack-request-id"] = answer.request_id
            return resp
    if svc.conf.delayed_delete and image.get("locations"):
        # Delayed delete: the data stays until the scrubber removes it (images/scrubber.py).
        svc.data.image_pending_delete(ctx, image_id)
        notifications.of(svc).image_deleted({**image, "status": "pending_delete"})
        return no_content()
    removed = set()
    for location in image.get("locations") or []:
        try:
            locations_mod.remove_location(svc, ctx, image_id, location)
        except exceptions.InUseByStore as exc:
            LOG.warning(
                "Image %s could not be deleted: its data at %s is in use: %s", image_id, location["url"], exc
            )
            raise exceptions.InUseByStore(
                f"Image {image_id} could not be deleted because it is in use: {exc.message}"
            ) from None
        removed.add(location["id"])
    before = svc.data.image_destroy(ctx, image_id)
    notifications.of(svc).image_deleted({**before, "status": "deleted"})
    for location in before.get("locations") or []:
        if location["id"] in removed:
            continue
        # Recorded after the read above (an upload or import finishing just now): the record
        # is gone with the image, so its data must not stay behind.
        try:
            svc.stores.delete(location["url"], (location.get("metadata") or {}).get("store"))
        except Exception:
            LOG.exception(
                "Image %s deleted, but its data at %s could not be removed", image_id, location["url"]
            )
    if before.get("status") == "uploading":
        # Data staged for glance-direct goes with the image (a running import cleans up itself).
        try:
            svc.stores.unstage(image_id)
        except Exception:
            LOG.exception("Image %s deleted, but its staged data could not be removed", image_id)
    return no_content()
