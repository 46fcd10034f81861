"""The image cache admin API (reference 1.11): ``/v2/cache``, all admin-only by policy.

Without ``[DEFAULT] image_cache_dir`` every call is 404 "Caching via API is not supported at
this site." (after the policy check, as in Glance). Calls naming an image look it up first
(404 for one the caller cannot see), as Glance's ``cached_images.py`` does. The cache itself
is ``store/image_cache.py``; this module also hands its queue worker the way to read an image
(``for_services``).
"""

from __future__ import annotations

import webob
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.api import common
from glance_service.api.router import Route
from glance_service.api.wiring import Services
from glance_service.context import RequestContext
from glance_service.images import states
from glance_service.store import image_cache

LOG = logging.getLogger(__name__)

CLEAR_TARGET = "x-image-cache-clear-target"


def routes() -> list[Route]:
    return [
        Route("/v2/cache", {"GET": list_cache, "DELETE": clear}, "GET, DELETE", frozenset({"GET", "DELETE"})),
        Route("/v2/cache/clean", {"POST": clean}, "POST", frozenset({"POST"})),
        Route("/v2/cache/prune", {"POST": prune}, "POST", frozenset({"POST"})),
        Route("/v2/cache/nodes/{image_id}", {"GET": cached_nodes}, "GET", frozenset({"GET"})),
        Route(
            "/v2/cache/{image_id}",
            {"PUT": queue_image, "DELETE": delete_image},
            "PUT, DELETE",
            frozenset({"PUT", "DELETE"}),
        ),
    ]


def for_services(svc: Services) -> image_cache.ImageCache | None:
    """This process's image cache (None when off), with its queue worker running."""
    cache = image_cache.get(svc.conf)
    if cache is not None:
        image_cache.start_worker(cache, lambda image_id: _fetch(svc, image_id))
    return cache


def _fetch(svc: Services, image_id: str):
    """The worker's read of a queued image: ``(image, source)``, None if it is not active."""
    image = svc.data.image_get(RequestContext.admin(), image_id)
    if image["status"] != states.ACTIVE:
        LOG.info("Not caching image %s: it is %s", image_id, image["status"])
        return None
    error: exceptions.GlanceServiceError = exceptions.NotFound(f"Image {image_id} has no data.")
    for loc in image.get("locations") or []:
        if loc.get("status", "active") != "active":
            continue
        try:
            return image, svc.stores.open(loc["url"], backend=(loc.get("metadata") or {}).get("store"))
        except exceptions.GlanceServiceError as exc:
            error = exc
    raise error


def _cache(
    svc: Services, ctx: RequestContext, rule: str, image: dict | None = None
) -> image_cache.ImageCache:
    svc.policy.enforce(ctx, rule, image)
    cache = for_services(svc)
    if cache is None:
        raise exceptions.NotFound("Caching via API is not supported at this site.")
    return cache


def _accepted() -> webob.Response:
    resp = webob.Response(status=202)
    resp.headers.pop("Content-Type", None)
    return resp


def list_cache(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    cache = _cache(svc, ctx, "cache_list")
    return common.json_response({"cached_images": cache.cached(), "queued_images": cache.queued()})


def queue_image(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    # Glance's order: the image (404 for one the caller cannot see), the policy, the cache
    # itself (404 when off), then the status (400).
    image = svc.data.image_get(ctx, image_id)
    cache = _cache(svc, ctx, "cache_image", image)
    if image["status"] != states.ACTIVE:
        raise exceptions.BadRequest("Only images with status active can be targeted for queueing")
    if not image_cache.valid_id(image_id):
        raise exceptions.BadRequest(f"Image id {image_id!r} cannot be cached.")
    if cache.queue(image_id):
        image_cache.start_worker(cache, lambda i: _fetch(svc, i)).wake()
    return _accepted()


def delete_image(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    # As Glance: the image first (an id unknown to the database may still have an entry:
    # removing it is what this call is for), then the policy.
    image = None
    try:
        image = svc.data.image_get(ctx, image_id)
    except exceptions.ImageNotFound:
        cache = for_services(svc)
        if cache is None or not (cache.is_cached(image_id) or cache.is_queued(image_id)):
            raise exceptions.ImageNotFound(f"Image {image_id} not found.") from None
    cache = _cache(svc, ctx, "cache_delete", image)
    if image_cache.valid_id(image_id):
        cache.delete_cached(image_id)
    cache.delete_queued(image_id)
    return common.no_content()


def cached_nodes(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    """Glance answers from its ``centralized_db`` cache driver; ours is one node's own cache
    (Glance's ``sqlite`` driver), for which Glance answers 409."""
    _cache(svc, ctx, "list_cached_nodes")
    raise exceptions.Conflict("Centralized caching is not enabled")


def clear(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    cache = _cache(svc, ctx, "cache_delete")
    target = (req.headers.get(CLEAR_TARGET) or "").strip().lower()
    if target not in ("", "cache", "queue"):
        raise exceptions.BadRequest(f"If provided '{CLEAR_TARGET}' must be 'cache', 'queue' or empty string.")
    if target in ("", "cache"):
        cache.delete_all_cached()
    if target in ("", "queue"):
        cache.delete_all_queued()
    return common.no_content()


def clean(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    cache = _cache(svc, ctx, "cache_clean")
    LOG.info("Cache clean removed %d files", cache.clean())
    return webob.Response(status=200)  # no body, as Glance


def prune(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    cache = _cache(svc, ctx, "cache_prune")
    files, freed = cache.prune()
    return common.json_response({"total_files_pruned": files, "total_bytes_pruned": freed})
