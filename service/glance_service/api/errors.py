"""Service errors → HTTP responses, in one place.

The status is the exception's ``code``; the body is the one WebOb would produce for the
matching ``webob.exc`` class (negotiated on ``Accept``: JSON ``{"message","code","title"}``,
HTML, or plain text), because that is what Glance answers and what clients parse. Credentials
in a URL the message quotes (a location's) are masked (``common.masking.mask_secrets``).
"""

from __future__ import annotations

import webob
import webob.exc
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common.masking import mask_secrets

LOG = logging.getLogger(__name__)


def to_response(req: webob.Request, exc: exceptions.GlanceServiceError) -> webob.Response:
    cls = webob.exc.status_map.get(exc.code, webob.exc.HTTPInternalServerError)
    headers: list[tuple[str, str]] = []
    if isinstance(exc, exceptions.MethodNotAllowed):
        headers.append(("Allow", ", ".join(exc.allowed)))
    if isinstance(exc, exceptions.UnsupportedMediaType) and exc.accept_patch:
        headers.append(("Accept-Patch", exc.accept_patch))
    if isinstance(exc, exceptions.RangeNotSatisfiable) and exc.size is not None:
        headers.append(("Content-Range", f"bytes */{exc.size}"))
    headers.extend(getattr(exc, "headers", None) or ())
    http_exc = cls(explanation=mask_secrets(exc.message), headers=headers)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        # WebOb's 415 template names only the content type and would drop the explanation.
        http_exc.body_template_obj = webob.exc.WSGIHTTPException.body_template_obj
    return req.get_response(http_exc)


def internal_error(req: webob.Request) -> webob.Response:
    """A 500 that says nothing about the cause (the traceback went to the log)."""
    return req.get_response(webob.exc.HTTPInternalServerError())


def bad_request(req: webob.Request, message: str) -> webob.Response:
    return to_response(req, exceptions.BadRequest(message))
