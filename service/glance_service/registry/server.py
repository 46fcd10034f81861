"""glance-registry's WSGI application: the data API as JSON-RPC over HTTP.

    GET  /healthcheck   200 "OK" (503 if the database does not answer, or drained by
                        [healthcheck] disable_by_file_path); no authentication
    POST /rpc           {"command": "<operation>", "kwargs": {...}}
                        → 200 {"result": ...}
                        → <exc.code> {"error": {"type": "<exception class>", "message": "..."}}

The caller's identity comes from the auth pipeline (``common.auth.with_auth``) or from
glance-api's signed identity (``registry.identity``), never from the body. Only the operations
declared in ``db.interface.OPERATIONS`` can be called, with their declared arguments (400
otherwise; checked against the declaration, not by introspecting the implementation).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from http import HTTPStatus

from oslo_config import cfg
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common import auth, healthcheck, json_bytes, metrics, request_log
from glance_service.context import RequestContext
from glance_service.db import unavailable
from glance_service.db.interface import OPERATIONS, DataAPI
from glance_service.registry import identity, record_cache

LOG = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024
_JSON = [("Content-Type", "application/json")]


def _respond(start_response: Callable, status: str, body: bytes, headers: list | None = None) -> list[bytes]:
    start_response(status, [*(headers or _JSON), ("Content-Length", str(len(body)))])
    return [body]


def _status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Error"


def _error(start_response: Callable, exc: exceptions.GlanceServiceError, extra_headers: list | None = None):
    message = request_log.mask_secrets(exc.message)
    body = json.dumps({"error": {"type": type(exc).__name__, "message": message}}).encode()
    return _respond(start_response, _status_line(exc.code), body, [*_JSON, *(extra_headers or [])])


class RegistryApp:
    """Dispatches ``/rpc`` calls to a ``DataAPI`` (normally ``db.database_api.DatabaseAPI``)."""

    def __init__(self, data_api: DataAPI):
        self.data_api = data_api

    def __call__(self, environ: dict, start_response: Callable):
        path = environ.get("PATH_INFO", "")
        if path != "/rpc":
            return _error(start_response, exceptions.NotFound(f"No such resource: {path}"))
        if environ.get("REQUEST_METHOD") != "POST":
            exc = exceptions.MethodNotAllowed(["POST"], "Only POST is allowed on /rpc")
            return _error(start_response, exc, [("Allow", "POST")])
        ctx = auth.get_context(environ)
        try:
            command, kwargs = _parse(environ)
            if command in OPERATIONS:  # issue 18 metrics: calls by operation (declared ones only)
                environ["glance.route"] = command
            result = self._dispatch(ctx, command, kwargs)
        except exceptions.GlanceServiceError as exc:
            if exc.code >= 500:
                LOG.warning("[%s] %s failed: %s", ctx.request_id, environ.get("PATH_INFO"), exc.message)
            return _error(start_response, exc)
        except unavailable.DATABASE_DOWN as exc:
            # The database refused or dropped the connection (a password rotation's window, a
            # restart, a full pool): the call may succeed again, so 503, not 500.
            LOG.warning("[%s] %s: the database failed: %s", ctx.request_id, environ.get("PATH_INFO"), exc)
            return _error(start_response, unavailable.unavailable(exc))
        except Exception:
            LOG.exception("[%s] registry call failed", ctx.request_id)
            return _error(
                start_response, exceptions.GlanceServiceError("The registry failed to process the call.")
            )
        body = json_bytes.dumps({"result": result})
        return _respond(start_response, "200 OK", body)

    def _dispatch(self, ctx: RequestContext, command: str, kwargs: dict):
        op = OPERATIONS.get(command)
        if op is None:
            raise exceptions.BadRequest(f"Unknown registry command: {command}")
        problem = op.check(kwargs)
        if problem is not None:
            raise exceptions.BadRequest(f"Invalid arguments for {command}: {problem}")
        return getattr(self.data_api, command)(ctx, **kwargs)


def _parse(environ: dict) -> tuple[str, dict]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise exceptions.BadRequest("Invalid Content-Length") from None
    if length > MAX_BODY:
        raise exceptions.RequestEntityTooLarge("The registry call is too large")
    raw = environ["wsgi.input"].read(length) if length else environ["wsgi.input"].read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise exceptions.RequestEntityTooLarge("The registry call is too large")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise exceptions.BadRequest("The body is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("command"), str):
        raise exceptions.BadRequest('The body must be {"command": "<name>", "kwargs": {...}}')
    kwargs = body.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise exceptions.BadRequest("kwargs must be an object")
    return body["command"], kwargs


def build_app(conf: cfg.ConfigOpts, data_api: DataAPI | None = None) -> Callable:
    """The registry's WSGI app: request id, healthcheck, then authentication, then the RPC
    dispatcher. The request ids are oslo.middleware's, without its webob wrapping
    (``common.request_log.RequestIds``): glance-api's ``X-Openstack-Request-Id`` (its global
    id) is the registry's global id."""
    if data_api is None:
        from glance_service.db.database_api import DatabaseAPI, image_status_summary

        database = DatabaseAPI(conf)
        # issue 18 metrics: images by status, queried at each scrape
        metrics.count_images_with(functools.partial(image_status_summary, database.db))
        # The registry owns the database: it fills the record cache and invalidates it.
        data_api = record_cache.wrap(conf, database, read=False, owner=True)
    rpc = request_log.LogIdentity(RegistryApp(data_api))
    secret = identity.secret_of(conf)
    if not secret:
        return request_log.with_plain_request_ids(
            _healthcheck(auth.with_auth(rpc, conf, "glance-registry"), conf, data_api)
        )
    # glance-api's signed identity replaces a second validation of the user's token. Token
    # validation stays for other callers, built on first use: keystonemiddleware and its
    # dependencies are ~20 MiB per process that a registry behind glance-api never needs.
    inner = identity.SignedIdentityMiddleware(
        rpc, _Lazy(lambda: auth.with_auth(rpc, conf, "glance-registry")), secret,
        conf.registry_identity_max_age, MAX_BODY,
    )  # fmt: skip
    return request_log.with_plain_request_ids(_healthcheck(inner, conf, data_api))


def _healthcheck(app: Callable, conf: cfg.ConfigOpts, data_api: DataAPI) -> Callable:
    """``/healthcheck`` before authentication (load balancers and systemd carry no token):
    oslo.middleware's, its ``glance_database`` backend 503 when the database does not answer,
    ``disable_by_file`` to drain the node (``common.healthcheck``)."""
    return healthcheck.build(app, conf, healthcheck.Resources(conf, "glance-registry", data_api=data_api))


class _Lazy:
    """A WSGI app built by ``factory`` at its first request."""

    def __init__(self, factory: Callable[[], Callable]):
        self._factory = factory
        self._app: Callable | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable):
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app(environ, start_response)
