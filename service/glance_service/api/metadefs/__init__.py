"""Metadata definitions (reference 1.10) and their schemas (1.8): the feature's route table.

``api/routes.py`` imports this package and appends ``routes()`` to the core table. Handlers
are looked up on the imported modules when the table is built: a name that is not there fails
the build (glance-api's start-up), not a request.
"""

from __future__ import annotations

import json

import webob

from glance_service.api.metadefs import contents, namespaces
from glance_service.api.router import Handler, Route
from glance_service.api.wiring import Services
from glance_service.context import RequestContext
from glance_service.images import metadef_schema

_NS = "/v2/metadefs/namespaces/{namespace}"


def _h(module, name: str) -> Handler:
    return getattr(module, name)


def _schema_handler(which: str):
    def handler(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
        resp = webob.Response(status=200, content_type="application/json", charset=None)
        resp.body = json.dumps(metadef_schema.PUBLISHED[which]()).encode()
        return resp

    return handler


def routes() -> list[Route]:
    get = frozenset({"GET"})
    get_delete = frozenset({"GET", "DELETE"})
    ns, co = namespaces, contents
    table = [
        Route("/v2/metadefs/resource_types", {"GET": _h(ns, "resource_types")}, "GET", get),
        Route(
            "/v2/metadefs/namespaces", {"GET": _h(ns, "index"), "POST": _h(ns, "create")}, "GET, POST", get
        ),
        Route(
            _NS,
            {"GET": _h(ns, "show"), "PUT": _h(ns, "update"), "DELETE": _h(ns, "delete")},
            "GET, PUT, DELETE",
            get_delete,
        ),
        Route(
            _NS + "/resource_types",
            {"GET": _h(ns, "associations"), "POST": _h(ns, "associate")},
            "GET, POST",
            get,
        ),
        Route(
            _NS + "/resource_types/{resource_type}",
            {"DELETE": _h(ns, "dissociate")},
            "DELETE",
            frozenset({"DELETE"}),
        ),
    ]
    for kind, singular in (("properties", "property"), ("objects", "object"), ("tags", "tag")):
        var = "{" + singular + "_name}"
        table.append(
            Route(
                f"{_NS}/{kind}",
                {
                    "GET": _h(co, f"list_{kind}"),
                    "POST": _h(co, f"create_{kind if kind == 'tags' else singular}"),
                    "DELETE": _h(co, f"delete_{kind}"),
                },
                "GET, POST, DELETE",
                get_delete,
            )
        )
        item = {
            "GET": _h(co, f"show_{singular}"),
            "PUT": _h(co, f"update_{singular}"),
            "DELETE": _h(co, f"delete_{singular}"),
        }
        allow = "GET, PUT, DELETE"
        reject = get_delete
        if kind == "tags":
            item["POST"] = _h(co, "create_tag")
            allow = "GET, POST, PUT, DELETE"
            reject = get_delete  # POST may carry an empty body: the name is in the URL
        table.append(Route(f"{_NS}/{kind}/{var}", item, allow, reject))
    for which in (
        "namespace",
        "namespaces",
        "resource_type",
        "resource_types",
        "property",
        "properties",
        "object",
        "objects",
        "tag",
        "tags",
    ):
        table.append(Route(f"/v2/schemas/metadefs/{which}", {"GET": _schema_handler(which)}, "GET", get))
    return table
