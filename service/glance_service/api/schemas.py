"""``GET /v2/schemas/...``: the published JSON schemas (serialised once per process)."""

from __future__ import annotations

import json

import webob

from glance_service.api.wiring import Services
from glance_service.context import RequestContext
from glance_service.images import image_schema as schema_mod


def _response(body: bytes) -> webob.Response:
    resp = webob.Response(status=200, content_type="application/json", charset=None)
    resp.body = body
    return resp


def _cached(svc: Services, which: str, build) -> bytes:
    # Serialised once per process: the schemas only change with the configuration.
    cache = svc.__dict__.setdefault("_schema_cache", {})
    if which not in cache:
        cache[which] = json.dumps(build()).encode()
    return cache[which]


def image(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    return _response(_cached(svc, "image", svc.schema.raw))


def images(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    return _response(_cached(svc, "images", svc.schema.collection_raw))


def member(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    return _response(_cached(svc, "member", schema_mod.member_schema))


def members(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    return _response(_cached(svc, "members", schema_mod.members_schema))
