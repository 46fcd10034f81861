"""The Image API v2 route table (paths after version negotiation: ``/v2/...``).

``allow`` is the ``Allow`` header of a 405, in Glance's order; ``body_reject`` lists the
methods for which a request body is a 400.
"""

from __future__ import annotations

from glance_service.api.router import Route

_DATA = "glance_service.api.image_data"


def routes() -> list[Route]:
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
