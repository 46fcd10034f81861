"""The Image API v2 route table (paths after version negotiation: ``/v2/...``).

``allow`` is the ``Allow`` header of a 405, in Glance's order; ``body_reject`` lists the
methods for which a request body is a 400. Handlers and feature modules are imported here,
not named in strings: a missing one fails the import (glance-api's start-up), not a request.
"""

from __future__ import annotations

from glance_service.api import (
    actions,
    cache,
    image_data,
    images,
    imports,
    info,
    location_tasks,
    members,
    metadefs,
    schemas,
    stores,
    tags,
    tasks,
)
from glance_service.api.router import Route

# Feature modules that carry their own routes: each defines ``routes() -> list[Route]``.
# Listed here once, so a feature is added without editing the core table.
FEATURE_MODULES = (members, imports, location_tasks, tasks, stores, metadefs, cache)


def routes() -> list[Route]:
    return core_routes() + feature_routes()


def feature_routes() -> list[Route]:
    return [route for module in FEATURE_MODULES for route in module.routes()]


def core_routes() -> list[Route]:
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
            {"GET": image_data.download, "PUT": image_data.upload},
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
