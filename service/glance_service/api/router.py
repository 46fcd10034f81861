"""The v2 route table and the dispatcher.

A route is a path pattern with one handler per method. An unknown path is 404; a known
path with another method is 405 with ``Allow`` (Glance's order); a body sent to a route
that takes none is 400. Handlers are ``handler(req, svc, ctx, **urlvars) -> Response``,
referenced as functions: a route whose handler is not one, whose method is not an HTTP
method, or whose template is already in the table fails when the table is built (glance-api's
start-up, and the unit tests), never at a request.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import webob
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.api import errors
from glance_service.api.wiring import Services
from glance_service.common.auth import get_context

LOG = logging.getLogger(__name__)

Handler = Callable[..., webob.Response]

_SAFE_METHODS = frozenset({"GET", "HEAD"})
_VAR = re.compile(r"\{(\w+)\}")
_METHOD = re.compile(r"^[A-Z]+$")


@dataclasses.dataclass
class Route:
    template: str
    handlers: dict[str, Handler]
    allow: str
    body_reject: frozenset[str] = frozenset()
    pattern: re.Pattern = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        # Templates hold no regex metacharacters besides the ``{var}`` placeholders.
        regex = _VAR.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", self.template)
        self.pattern = re.compile(f"^{regex}$")
        for method, handler in self.handlers.items():
            if not isinstance(method, str) or not _METHOD.match(method):
                raise ValueError(f"{method} {self.template}: not an HTTP method (upper case)")
            if isinstance(handler, str) or not callable(handler):
                raise TypeError(f"{method} {self.template}: the handler is not a function: {handler!r}")


# A request refused before its body is read still has body bytes on the way. Unless they are
# read, the server closes the connection with data unread, the kernel answers with a reset,
# and a client that sends the whole body before reading never sees the error. Reading this
# much more gives it the 4xx; past it, the connection is dropped.
DRAIN_LIMIT = 64 * 1024 * 1024
_DRAIN_BLOCK = 1024 * 1024


def drain(stream, limit: int = DRAIN_LIMIT) -> None:
    """Read and drop what is left of a request body (at most ``limit`` bytes)."""
    if stream is None:
        return
    try:
        while limit > 0:
            buf = stream.read(min(_DRAIN_BLOCK, limit))
            if not buf:
                return
            limit -= len(buf)
    except Exception:  # noqa: BLE001 - the client is gone or its framing is broken
        return


def has_body(req: webob.Request) -> bool:
    if req.content_length:
        return True
    return "chunked" in (req.headers.get("Transfer-Encoding") or "").lower()


class Router:
    """Matches ``PATH_INFO`` (already rewritten to ``/v2/...`` by version negotiation)."""

    def __init__(self, routes: list[Route], services: Services):
        seen: set[str] = set()
        for route in routes:
            if route.template in seen:
                raise ValueError(f"{route.template}: two routes with one template (the second never matches)")
            seen.add(route.template)
        self.services = services
        self.routes = routes

    def match(self, method: str, path: str) -> tuple[Route, Handler, dict]:
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            handler = route.handlers.get(method)
            if handler is None:
                raise exceptions.MethodNotAllowed(
                    [m.strip() for m in route.allow.split(",")],
                    "The method specified is not allowed for this resource.",
                )
            return route, handler, found.groupdict()
        raise exceptions.NotFound("The resource could not be found.")

    def __call__(self, environ: dict, start_response: Callable):
        req = webob.Request(environ)
        # The server's own input: a handler that reads the body through WebOb leaves a copy
        # in the environ, and this one at its end.
        body_input = environ.get("wsgi.input") if has_body(req) else None
        try:
            route, handler, urlvars = self.match(req.method, req.path_info)
            environ["glance.route"] = route.template  # issue 18 metrics: the route, not the path
            if req.method in route.body_reject and has_body(req):
                raise exceptions.BadRequest("A body is not expected with this request.")
            ctx = get_context(environ)
            if ctx.read_only and req.method not in _SAFE_METHODS:
                raise exceptions.Forbidden("Read-only access")
            resp = handler(req, self.services, ctx, **urlvars)
        except exceptions.GlanceServiceError as exc:
            if exc.code >= 500:
                LOG.error("%s %s: %s", req.method, req.path, exc.message)
            resp = errors.to_response(req, exc)
        except UnicodeDecodeError:
            # The path or query string is not UTF-8: the client's mistake, not ours.
            resp = errors.bad_request(req, "The request URL or query string is not valid UTF-8.")
        except Exception:
            LOG.exception("Unexpected error in %s %s", req.method, req.path)
            resp = errors.internal_error(req)
        if body_input is not None:
            drain(body_input)
        return resp(environ, start_response)
