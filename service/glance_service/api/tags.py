"""``PUT``/``DELETE /v2/images/{id}/tags/{tag}``: tags are a set; both answer 204."""

from __future__ import annotations

import webob

from glance_service import exceptions
from glance_service.api.common import no_content
from glance_service.api.images import get_visible_image
from glance_service.api.wiring import Services
from glance_service.context import RequestContext

MAX_TAG_LENGTH = 255


def add(
    req: webob.Request, svc: Services, ctx: RequestContext, image_id: str, tag_value: str
) -> webob.Response:
    if len(tag_value) > MAX_TAG_LENGTH:
        raise exceptions.BadRequest(
            f"Provided object does not match schema 'image': '{tag_value}' is too long"
        )
    image = get_visible_image(svc, ctx, image_id)
    svc.policy.enforce_image(ctx, "modify_image", image)
    tags = image.get("tags") or []
    quota = svc.conf.image_tag_quota
    if tag_value not in tags and 0 <= quota < len(tags) + 1:
        raise exceptions.LimitExceeded(
            f"Maximum image tags exceeded: attempted {len(tags) + 1}, maximum {quota}."
        )
    svc.data.image_tag_create(ctx, image_id, tag_value)
    return no_content()


def delete(
    req: webob.Request, svc: Services, ctx: RequestContext, image_id: str, tag_value: str
) -> webob.Response:
    image = get_visible_image(svc, ctx, image_id)
    svc.policy.enforce_image(ctx, "modify_image", image)
    svc.data.image_tag_delete(ctx, image_id, tag_value)
    return no_content()
