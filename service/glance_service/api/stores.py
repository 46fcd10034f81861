"""Multi-store discovery and per-store deletion (reference 1.2 and 1.5).

``GET /v2/info/stores`` lists the enabled backends (never the reserved ``os_glance_*``
ones), ``/detail`` adds type, weight and properties (admin or service), and
``DELETE /v2/stores/{store_id}/{image_id}`` removes one store's copy of an active image.
All answer 404 when ``enabled_backends`` is not set.
"""

from __future__ import annotations

import webob
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.api import common, locations
from glance_service.api.router import Route
from glance_service.api.wiring import Services
from glance_service.context import RequestContext
from glance_service.images import import_tasks, states

LOG = logging.getLogger(__name__)


def routes() -> list[Route]:
    get = frozenset({"GET"})
    return [
        Route("/v2/info/stores/detail", {"GET": detail}, "GET", get),
        Route(
            "/v2/stores/{store_id}/{image_id}", {"DELETE": delete_from_store}, "DELETE", frozenset({"DELETE"})
        ),
    ]


def _require_multistore(svc: Services) -> None:
    if not svc.stores.enabled:
        raise exceptions.NotFound("Multi backend is not supported at this site.")


def listing(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    _require_multistore(svc)
    return common.json_response({"stores": svc.stores.info()})


def detail(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    _require_multistore(svc)
    svc.policy.enforce_target(ctx, "stores_info_detail", {"project_id": ctx.project_id})
    return common.json_response({"stores": svc.stores.info(detail=True)})


def image_stores(svc: Services, image: dict) -> list[str]:
    """The stores holding an image, by store weight (highest first), like Glance's ``stores``."""
    found = []
    for loc in image.get("locations") or []:
        if loc.get("status", "active") != "active":
            continue
        store = (loc.get("metadata") or {}).get("store")
        if store and store not in found:
            found.append(store)
    return sorted(found, key=lambda s: -svc.stores.weight(s) if s in svc.stores.enabled else 0)


def delete_from_store(
    req: webob.Request, svc: Services, ctx: RequestContext, store_id: str, image_id: str
) -> webob.Response:
    _require_multistore(svc)
    if store_id not in svc.stores.enabled:
        raise exceptions.Conflict(f"Unknown store {store_id}: it is not enabled on this node.")
    image = svc.data.image_get(ctx, image_id)
    svc.policy.enforce_image(ctx, "delete_image_location", image)
    if image["status"] != states.ACTIVE:
        raise exceptions.ImageStatusConflict(
            "It's not allowed to remove image data from store if image not active"
        )
    if (image.get("properties") or {}).get(import_tasks.IMPORT_TASK):
        raise exceptions.Conflict(f"Image {image_id} has an import in progress: try again when it is done.")
    live = [loc for loc in image.get("locations") or [] if loc.get("status", "active") == "active"]
    mine = [loc for loc in live if (loc.get("metadata") or {}).get("store") == store_id]
    if not mine:
        raise exceptions.NotFound(f"Image {image_id} is not present in store {store_id}.")
    if len(live) == len(mine):
        raise exceptions.Forbidden("Cannot delete the image's last location.")
    for loc in mine:
        # The data goes first, then the record (locations.remove_location): a store that
        # refuses (in use: 409) or fails keeps the copy and its location as they were.
        try:
            locations.remove_location(svc, ctx, image_id, loc)
        except exceptions.InUseByStore as exc:
            LOG.warning("Image %s keeps its data in store %s: it is in use: %s", image_id, store_id, exc)
            raise exceptions.InUseByStore(
                f"The data for Image {image_id} could not be deleted because it is in use: {exc.message}"
            ) from None
    return common.no_content()
