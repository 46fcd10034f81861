"""The Image API v2 route table (paths after version negotiation: ``/v2/...``).

``allow`` is the ``Allow`` header of a 405, in Glance's order; ``body_reject`` lists the
methods for which a request body is a 400.
"""

from __future__ import annotations

import importlib

from glance_service.api.router import Route

_DATA = "glance_service.api.image_data"


# Feature modules that carry their own routes: each defines ``routes() -> list[Route]``.
# Listed here once, so a feature is added without editing the core table.
FEATURE_MODULES = (
    "glance_service.api.members",
    "glance_service.api.imports",
    "glance_service.api.tasks",
    "glance_service.api.stores",
    "glance_service.api.metadefs",
    "glance_service.api.cache",
)


def routes() -> list[Route]:
    return core_routes() + feature_routes()


def feature_routes() -> list[Route]:
    found: list[Route] = []
    for name in FEATURE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it imports does not
                raise
            continue
        found.extend(module.routes())
    return found


def core_routes() -> list[Route]:
    from glance_service.api import actions, images, info, schemas, tags

    get = frozenset({"GET"})
    return [
        Route("/v2/images", {"GET": images.index, "POST": images.create}, "GET, POST"),
        Route(
            "/v2/images/{image_id}",
            {"GET": images.show, "PATCH": images.update, "DELETE": images.delete},
            "GET, PATCH, DELETE",
            frozenset({"GET", "DELETE"}),
        ),
        Route(
            "/v2/images/{image_id}/file",
            {"GET": f"{_DATA}:download", "PUT": f"{_DATA}:upload"},
            "GET, PUT",
            get,
        ),
        Route(
            "/v2/images/{image_id}/tags/{tag_value}",
            {"PUT": tags.add, "DELETE": tags.delete},
            "PUT, DELETE",
            frozenset({"PUT", "DELETE"}),
        ),
        Route(
            "/v2/images/{image_id}/actions/deactivate",
            {"POST": actions.deactivate},
            "POST",
            frozenset({"POST"}),
        ),
        Route(
            "/v2/images/{image_id}/actions/reactivate",
            {"POST": actions.reactivate},
            "POST",
            frozenset({"POST"}),
        ),
        Route("/v2/schemas/image", {"GET": schemas.image}, "GET", get),
        Route("/v2/schemas/images", {"GET": schemas.images}, "GET", get),
        Route("/v2/schemas/member", {"GET": schemas.member}, "GET", get),
        Route("/v2/schemas/members", {"GET": schemas.members}, "GET", get),
        Route("/v2/info/import", {"GET": info.import_methods}, "GET", get),
        Route("/v2/info/stores", {"GET": info.stores}, "GET", get),
        Route("/v2/info/usage", {"GET": info.usage}, "GET"),
    ]
