"""``POST /v2/images/{id}/actions/deactivate|reactivate`` (204; already there is a no-op)."""

from __future__ import annotations

import webob

from glance_service import exceptions
from glance_service.api.common import no_content
from glance_service.api.wiring import Services
from glance_service.context import RequestContext
from glance_service.images import states


def _change(svc: Services, ctx: RequestContext, image_id: str, rule: str, verb: str, src: str, dst: str):
    image = svc.data.image_get(ctx, image_id)
    svc.policy.enforce_image(ctx, rule, image)
    status = image["status"]
    if status == dst:
        return no_content()
    if status != src or not states.is_allowed(src, dst):
        raise exceptions.InvalidImageStatusTransition(f"Not allowed to {verb} image in status '{status}'")
    try:
        svc.data.image_update(ctx, image_id, {"status": dst}, from_state=src)
    except exceptions.ImageStatusConflict:
        # Someone else changed the status meanwhile: same answer as a wrong status, unless
        # the other caller did exactly what we were asked to do.
        now = svc.data.image_get(ctx, image_id)["status"]
        if now != dst:
            raise exceptions.InvalidImageStatusTransition(
                f"Not allowed to {verb} image in status '{now}'"
            ) from None
    return no_content()


def deactivate(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    return _change(svc, ctx, image_id, "deactivate", "deactivate", states.ACTIVE, states.DEACTIVATED)


def reactivate(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    return _change(svc, ctx, image_id, "reactivate", "reactivate", states.DEACTIVATED, states.ACTIVE)
