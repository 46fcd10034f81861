"""``/v2/info/...`` discovery (stores: ``api/stores.py``)."""

from __future__ import annotations

import webob

from glance_service.api.common import json_response
from glance_service.api.wiring import Services
from glance_service.context import RequestContext
from glance_service.images import unified_limits


def import_methods(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    return json_response(
        {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": list(svc.conf.enabled_import_methods),
            }
        }
    )


def stores(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    # 404 ("Multi backend is not supported") unless enabled_backends is set.
    from glance_service.api import stores as stores_api

    return stores_api.listing(req, svc, ctx)


def usage(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    # As upstream: the caller's project, {resource: {"limit", "usage"}} from Keystone's unified
    # limits (images/unified_limits.py); an empty usage when use_keystone_limits is off.
    return json_response({"usage": unified_limits.usage(svc.conf, svc.data, ctx)})
