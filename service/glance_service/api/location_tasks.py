"""Location import (``POST``/``GET /v2/images/{id}/locations``, since 2.17): a location added
by URL becomes a ``location_import`` task (``images.location_import``), started as every import
is (``api.imports.start``). PATCH on ``/locations`` is ``api/locations.py``."""

from __future__ import annotations

import re
import urllib.parse

import webob

from glance_service import exceptions
from glance_service.api import common
from glance_service.api.imports import start, visible_image
from glance_service.api.router import Route
from glance_service.api.wiring import Services
from glance_service.common import process
from glance_service.context import RequestContext
from glance_service.images import import_options, import_tasks, states

# validation_data.os_hash_algo → hex digest length
HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def routes() -> list[Route]:
    get = frozenset({"GET"})
    return [
        # Glance answers other methods here with "Allow: POST", although GET is routed too.
        Route("/v2/images/{image_id}/locations", {"POST": add_location, "GET": list_locations}, "POST", get),
    ]


def _parse_location(body: object) -> tuple[str, dict]:
    if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"]:
        raise exceptions.BadRequest("The request needs a 'url' (string).")
    unknown = set(body) - {"url", "validation_data"}
    if unknown:
        raise exceptions.BadRequest(f"Additional properties are not allowed: {', '.join(sorted(unknown))}")
    data = body.get("validation_data") or {}
    if not isinstance(data, dict):
        raise exceptions.BadRequest("'validation_data' must be an object.")
    extra = set(data) - {"os_hash_algo", "os_hash_value"}
    if extra:
        raise exceptions.BadRequest(f"Additional properties are not allowed: {', '.join(sorted(extra))}")
    if data:
        algo, value = data.get("os_hash_algo"), data.get("os_hash_value")
        if not algo or not value:
            raise exceptions.BadRequest("os_hash_algo and os_hash_value must be given together.")
        if not isinstance(algo, str) or algo not in HASH_LENGTHS:
            raise exceptions.BadRequest(f"os_hash_algo must be one of {', '.join(HASH_LENGTHS)}.")
        if not isinstance(value, str) or not _HEX.match(value):
            raise exceptions.BadRequest("os_hash_value must be a hexadecimal string.")
        if len(value) != HASH_LENGTHS[algo]:
            raise exceptions.BadRequest(f"os_hash_value is not a valid {algo} digest: wrong length.")
        data = {"os_hash_algo": algo, "os_hash_value": value.lower()}
    return body["url"], data


def _http_store_configured(svc: Services, url: str) -> bool:
    """glance.common.utils.is_http_store_configured."""
    if not url.startswith("http"):
        return False
    if svc.stores.enabled:
        return "http" in svc.stores.enabled.values()
    return "http" in {str(s).strip() for s in svc.conf.glance_store.stores}


def add_location(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    from glance_service.api.locations import EXTERNAL_SCHEMES

    # Glance's order: body (400), image (404), status (409), policy (403/404), then who may
    # name which URL (403).
    url, validation = _parse_location(common.read_json(req))
    image = svc.data.image_get(ctx, image_id)
    if image["status"] != states.QUEUED:
        raise exceptions.ImageStatusConflict(
            f"It's not allowed to add locations if image status is {image['status']}."
        )
    svc.policy.enforce_image(ctx, "add_image_location", image)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in EXTERNAL_SCHEMES:
        raise exceptions.BadRequest(f"Invalid location: {url}")
    # As Glance: the 'service' role (of the user or of a service token), not the policy rule,
    # and for everyone else an http URL with the http store configured.
    if "service" not in {*ctx.roles, *ctx.service_roles} and not _http_store_configured(svc, url):
        raise exceptions.Forbidden("http store must be enabled to use location API by normal user.")
    # As Glance 33: an http(s) location passes the same filters as web-download (no loopback,
    # no metadata service) before any task fetches it.
    if scheme in ("http", "https") and not import_options.uri_allowed(svc.conf, url):
        raise exceptions.BadRequest(f"URI for add location does not pass filtering: {url}")
    states.check(image, states.IMPORTING)
    props = {import_tasks.WORKER: process.host_marker()}
    task_input = {"image_id": image_id, "loc_url": url, "validation_data": validation}
    values = {"status": states.IMPORTING, "properties": props}
    start(svc, ctx, image, "location_import", task_input, values, states.QUEUED)
    resp = webob.Response(status=202)
    resp.headers.pop("Content-Type", None)
    return resp


def list_locations(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    image = visible_image(svc, ctx, image_id)
    svc.policy.enforce_image(ctx, "fetch_image_location", image)
    return common.json_response(
        [
            {"url": loc["url"], "metadata": loc.get("metadata") or {}}
            for loc in image.get("locations") or []
            if loc.get("status", "active") == "active"
        ]
    )
