"""``/v2/images/{image_id}/members[/{member_id}]``: sharing (reference sections 1.7 and 4.2).

Order of checks, as in Glance: the body (400), the image as the caller may see it (404),
the member policy (403, or 404 when the caller may not even ``get_image``), then the image
must be ``shared`` (403 "Only shared images have members."). Who sees which member rows is
the data layer's decision (the owner all of them, a member only its own). Showing one
member answers 404 for every refusal, so that membership never leaks.
"""

from __future__ import annotations

import webob

from glance_service import exceptions
from glance_service.api.common import isotime, json_response, no_content, read_json
from glance_service.api.router import Route
from glance_service.api.wiring import Services
from glance_service.common import notifications
from glance_service.context import RequestContext
from glance_service.images import quotas

MEMBER_STATUSES = ("pending", "accepted", "rejected")
MAX_MEMBER_LENGTH = 255  # the image_members.member column
ONLY_SHARED = "Only shared images have members."


def routes() -> list[Route]:
    return [
        Route(
            "/v2/images/{image_id}/members",
            {"GET": index, "POST": create},
            "GET, POST",
            frozenset({"GET"}),
        ),
        Route(
            "/v2/images/{image_id}/members/{member_id}",
            {"GET": show, "PUT": update, "DELETE": delete},
            "GET, PUT, DELETE",
            frozenset({"GET", "DELETE"}),
        ),
    ]


def member_view(member: dict) -> dict:
    return {
        "member_id": member["member"],
        "image_id": member["image_id"],
        "status": member["status"],
        "created_at": isotime(member.get("created_at")),
        "updated_at": isotime(member.get("updated_at")),
        "schema": "/v2/schemas/member",
    }


def _image_for(svc: Services, ctx: RequestContext, image_id: str, rule: str) -> dict:
    """The image, after the data layer's visibility (404) and ``rule`` (403, or 404 when the
    caller may not see it), then the shared-only precondition (403)."""
    image = svc.data.image_get(ctx, image_id)
    svc.policy.enforce_image(ctx, rule, image)
    if image.get("visibility") != "shared":
        raise exceptions.Forbidden(ONLY_SHARED)
    return image


def _find(svc: Services, ctx: RequestContext, image_id: str, member_id: str) -> dict:
    found = svc.data.image_member_find(ctx, image_id, member_id)
    if not found:
        raise exceptions.MemberNotFound(f"{member_id} not found in the member list of the image {image_id}.")
    return found[0]


# -- body parsing ----------------------------------------------------------------------------------
def _member_from_body(body: object) -> str:
    if not isinstance(body, dict) or "member" not in body:
        raise exceptions.BadRequest("Member to be added not specified")
    member = body["member"]
    if not isinstance(member, str) or not member.strip():
        raise exceptions.BadRequest("Member can't be empty")
    if len(member) > MAX_MEMBER_LENGTH:
        raise exceptions.BadRequest(f"Member must be at most {MAX_MEMBER_LENGTH} characters long")
    return member


def _status_from_body(body: object) -> str:
    if not isinstance(body, dict) or "status" not in body:
        raise exceptions.BadRequest("Status not specified")
    status = body["status"]
    if status not in MEMBER_STATUSES:
        raise exceptions.BadRequest(f"Status must be one of {', '.join(MEMBER_STATUSES)}, not {status!r}")
    return status


# -- handlers -----------------------------------------------------------------------------------------
def create(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    member = _member_from_body(read_json(req))
    image = _image_for(svc, ctx, image_id, "add_member")
    current = svc.data.image_member_find(ctx, image["id"])
    if any(row["member"] == member for row in current):
        raise exceptions.Duplicate(f"Member {member} is duplicated for image {image_id}")
    quotas.check_members(svc.conf, len(current))
    try:
        created = svc.data.image_member_create(ctx, image["id"], member)
    except exceptions.Duplicate:
        raise exceptions.Duplicate(f"Member {member} is duplicated for image {image_id}") from None
    notifications.of(svc).member("image.member.create", created)
    return json_response(member_view(created))


def index(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    try:
        image = _image_for(svc, ctx, image_id, "get_members")
    except exceptions.Forbidden as exc:  # upstream's wording for a refused list
        raise exceptions.Forbidden(
            f"Not allowed to list members for image {image_id}: {exc.message}"
        ) from None
    members = svc.data.image_member_find(ctx, image["id"])
    return json_response({"members": [member_view(m) for m in members], "schema": "/v2/schemas/members"})


def show(
    req: webob.Request, svc: Services, ctx: RequestContext, image_id: str, member_id: str
) -> webob.Response:
    try:
        image = _image_for(svc, ctx, image_id, "get_member")
        return json_response(member_view(_find(svc, ctx, image["id"], member_id)))
    except (exceptions.Forbidden, exceptions.NotFound):
        raise exceptions.MemberNotFound(f"Not allowed to show member {member_id}") from None


def update(
    req: webob.Request, svc: Services, ctx: RequestContext, image_id: str, member_id: str
) -> webob.Response:
    status = _status_from_body(read_json(req))
    image = _image_for(svc, ctx, image_id, "modify_member")
    _find(svc, ctx, image["id"], member_id)
    updated = svc.data.image_member_update(ctx, image["id"], member_id, status)
    notifications.of(svc).member("image.member.update", updated)
    return json_response(member_view(updated))


def delete(
    req: webob.Request, svc: Services, ctx: RequestContext, image_id: str, member_id: str
) -> webob.Response:
    image = _image_for(svc, ctx, image_id, "delete_member")
    found = _find(svc, ctx, image["id"], member_id)
    svc.data.image_member_delete(ctx, image["id"], member_id)
    notifications.of(svc).member("image.member.delete", found)
    return no_content()
