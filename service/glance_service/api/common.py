"""Small request/response helpers shared by the handlers."""

from __future__ import annotations

import json

import webob

from glance_service import exceptions
from glance_service.api.router import has_body


def read_json(req: webob.Request, required: bool = True) -> object:
    """The request's JSON body; 400 for malformed JSON or a value that is not an object or
    array (Glance's JSONRequestDeserializer)."""
    if not has_body(req):
        if required:
            raise exceptions.BadRequest("Body expected in request.")
        return None
    try:
        raw = req.body
    except Exception as exc:  # a broken chunked body from the client
        raise exceptions.BadRequest("Unable to read the request body.") from exc
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise exceptions.BadRequest("Malformed JSON in request body.") from None
    if not isinstance(body, dict | list):
        raise exceptions.BadRequest("Malformed JSON in request body.")
    return body


def json_response(obj: object, status: int = 200) -> webob.Response:
    resp = webob.Response(status=status, content_type="application/json", charset=None)
    resp.body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return resp


def no_content() -> webob.Response:
    resp = webob.Response(status=204)
    resp.headers.pop("Content-Type", None)
    return resp


def isotime(value: str | None) -> str | None:
    """Data-layer timestamp (naive UTC ISO with microseconds) → ``YYYY-MM-DDThh:mm:ssZ``."""
    if not value:
        return value
    return value[:19] + "Z"
