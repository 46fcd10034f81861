"""``/v2/info/...`` discovery (stores: ``api/stores.py``)."""

from __future__ import annotations

import webob

from glance_service.api.common import json_response
from glance_service.api.wiring import Services
from glance_service.context import RequestContext


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
    # Unified limits (keystone) are not used: Glance answers an empty usage then.
    return json_response({"usage": {}})
