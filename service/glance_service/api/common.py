"""Small request/response helpers shared by the handlers."""

from __future__ import annotations

import json
import math

import webob

from glance_service import exceptions
from glance_service.api.router import has_body
from glance_service.common import json_bytes

# Deeper than any document the API defines (a metadef namespace with objects, properties and
# item enums is about 8). Past it, handlers, jsonschema, the registry's RPC encoding and
# decoding would recurse close to the interpreter's limit (RecursionError: a 500).
MAX_JSON_DEPTH = 32
MALFORMED = "Malformed JSON in request body."
TOO_DEEP = f"JSON in request body is nested deeper than {MAX_JSON_DEPTH} levels."


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _check_document(doc: object) -> None:
    """Depth and strings of a decoded document, without recursion: every string (keys
    included) must be encodable as UTF-8, i.e. hold no lone surrogate (``"\\ud800"`` decodes
    to one; the database drivers and the registry's wire format cannot carry it)."""
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise exceptions.BadRequest(
                        "Invalid string in request body: a lone surrogate cannot be encoded as UTF-8."
                    ) from None
            continue
        if isinstance(value, dict):
            items: list = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            items = value
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise exceptions.BadRequest(TOO_DEEP)
        stack.extend((item, depth + 1) for item in items if isinstance(item, str | dict | list))


def decode_json(raw: bytes) -> object:
    """A JSON document (object or array) from a request body, or ``BadRequest``.

    As Glance: strict UTF-8 (no BOM, no other encoding), and a value that is not an object
    or array is refused. Beyond Glance: NaN/Infinity and numbers out of a double's range are
    refused (they are not JSON), and so are documents nested deeper than ``MAX_JSON_DEPTH``
    and strings with lone surrogates, which Glance passes on to fail later as a 500."""
    try:
        text = raw.decode("utf-8")
        body = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise exceptions.BadRequest(TOO_DEEP) from None
    except ValueError:  # UnicodeDecodeError and json.JSONDecodeError are ValueErrors
        raise exceptions.BadRequest(MALFORMED) from None
    if not isinstance(body, dict | list):
        raise exceptions.BadRequest(MALFORMED)
    _check_document(body)
    return body


def read_json(req: webob.Request, required: bool = True) -> object:
    """The request's JSON body (the one reader every handler uses); 400 for a missing body
    when ``required``, for a body that cannot be read, and for any body ``decode_json``
    refuses (Glance's JSONRequestDeserializer, plus the checks listed there)."""
    if not has_body(req):
        if required:
            raise exceptions.BadRequest("Body expected in request.")
        return None
    try:
        raw = req.body
    except Exception as exc:  # a broken chunked body, or fewer bytes than Content-Length
        raise exceptions.BadRequest("Unable to read the request body.") from exc
    return decode_json(raw)


def json_response(obj: object, status: int = 200) -> webob.Response:
    resp = webob.Response(status=status, content_type="application/json", charset=None)
    resp.body = json_bytes.dumps(obj)
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
