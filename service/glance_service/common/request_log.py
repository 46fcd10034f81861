"""Request ids in log lines, one access log line per request, and secrets masked in every line.

Request ids are oslo.middleware's ``RequestId``, the outermost middleware of glance-api and
glance-registry: a new ``req-<uuid>`` per request, returned in ``x-openstack-request-id``;
the caller's ``X-Openstack-Request-Id``, when it is a valid ``req-<uuid>``, is kept as the
global request id. ``LogContext`` puts both into oslo.context's per-thread context, so that
every line logged while serving the request starts (oslo.log's
``logging_context_format_string``) with ``[<global id> <request id> <user> <project> ...]``;
``LogIdentity`` adds the caller once authenticated. glance-api passes its global id on to
glance-registry (``RequestContext.to_headers``), so one id follows a request from Nova through
the API to the registry.

The access line is written by gunicorn's access hook (``AccessLogger``, gunicorn's own
``accesslog`` stays off) when the response has been sent, through oslo.log like every other
line, in the form eventlet.wsgi gave Glance's logs::

    ... INFO glance_service.access [<global> <req> <user> <project> - - - -] 198.51.100.7
        "GET /v2/images?limit=2 HTTP/1.1" status: 200 len: 1042 time: 0.0123456   (one line)

Location URLs may carry store credentials (``s3://AKIA...:secret@host/...``,
``swift+https://user:key@...``, presigned query strings): ``install_masking`` wraps the
formatter of every log handler so that no line written, traceback included, shows them, and
``mask_secrets`` (``common.masking``) is applied to the message of every error body.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Callable, Iterable

from gunicorn import glogging
from oslo_context import context as oslo_context

from glance_service.common.masking import mask_secrets
from glance_service.context import CONTEXT_KEY, GLOBAL_REQUEST_ID_ENV, REQUEST_ID_ENV

ACCESS_LOGGER = "glance_service.access"


class MaskingFormatter(logging.Formatter):
    """Formats with the handler's own formatter, then masks secrets in the whole text."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner if inner is not None else logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(self.inner.format(record))

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def install_masking(loggers: Iterable[logging.Logger] | None = None) -> None:
    """Wrap the formatter of every handler of ``loggers`` (default: the root logger and every
    logger that has handlers of its own, such as a ``log_config_append`` file may set up)."""
    if loggers is None:
        loggers = [logging.getLogger()] + [
            logger
            for logger in list(logging.Logger.manager.loggerDict.values())
            if isinstance(logger, logging.Logger) and logger.handlers
        ]
    for logger in loggers:
        for handler in logger.handlers:
            if not isinstance(handler.formatter, MaskingFormatter):
                handler.setFormatter(MaskingFormatter(handler.formatter))


# -- request ids in every line ------------------------------------------------------------------


class LogContext:
    """Right inside oslo.middleware's RequestId: this thread's logging context gets the request's
    ids for everything logged while serving it (authentication included)."""

    def __init__(self, app: Callable):
        self.app = app

    def __call__(self, environ: dict, start_response: Callable):
        oslo_context.RequestContext(
            request_id=environ.get(REQUEST_ID_ENV),
            global_request_id=environ.get(GLOBAL_REQUEST_ID_ENV),
            overwrite=True,
        )
        return self.app(environ, start_response)


def bind_identity(ctx) -> oslo_context.RequestContext:
    """This thread's logging context for ``ctx`` (a ``glance_service.context.RequestContext``)."""
    current = oslo_context.get_current()
    if current is None or current.request_id != ctx.request_id:
        current = oslo_context.RequestContext(
            request_id=ctx.request_id, global_request_id=ctx.global_request_id, overwrite=True
        )
    current.user_id = ctx.user_id
    current.project_id = ctx.project_id
    current.user_domain_id = ctx.user_domain_id
    current.project_domain_id = ctx.project_domain_id
    return current


class LogIdentity:
    """Right inside authentication: the logging context gets the caller (user, project)."""

    def __init__(self, app: Callable):
        self.app = app

    def __call__(self, environ: dict, start_response: Callable):
        ctx = environ.get(CONTEXT_KEY)
        if ctx is not None:
            bind_identity(ctx)
        return self.app(environ, start_response)


def with_request_ids(app: Callable) -> Callable:
    """``app`` behind oslo.middleware's RequestId and the logging context."""
    from oslo_middleware import request_id

    return request_id.RequestId(LogContext(app))


class RequestIds:
    """oslo.middleware's ``RequestId`` without webob, for glance-registry: the same ids in the
    same environ keys, the same inbound global id check, the same response header.

    oslo's wraps every call in a webob request and response (about 5% of the registry's CPU
    per call, issue 17); the response object also drops HEAD bodies and makes a relative
    ``Location`` absolute, which glance-api's answers may rely on, so glance-api keeps oslo's.
    The registry's answers carry neither (JSON bodies, gunicorn drops HEAD bodies itself)."""

    def __init__(self, app: Callable):
        from oslo_middleware import request_id

        self.app = app
        self._id_format = re.compile(request_id.ID_FORMAT)
        self._inbound = "HTTP_" + request_id.INBOUND_HEADER.upper().replace("-", "_")
        self._header = request_id.HTTP_RESP_HEADER_REQUEST_ID

    def __call__(self, environ: dict, start_response: Callable):
        global_id = environ.get(self._inbound, "")
        if self._id_format.match(global_id):
            environ[GLOBAL_REQUEST_ID_ENV] = global_id
        request_id = environ[REQUEST_ID_ENV] = oslo_context.generate_request_id()
        header = self._header

        def start(status: str, headers: list, exc_info=None):
            if not any(name.lower() == header for name, _ in headers):
                headers = [*headers, (header, request_id)]
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def with_plain_request_ids(app: Callable) -> Callable:
    """``app`` behind ``RequestIds`` (oslo's ids without webob) and the logging context."""
    return RequestIds(LogContext(app))


# -- the access line ----------------------------------------------------------------------------


def access_line(resp, req, environ: dict, request_time: datetime.timedelta):
    """``(message, logging context or None)`` of one served request."""
    client = environ.get("REMOTE_ADDR") or "-"
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if forwarded:  # as eventlet.wsgi logged it: the proxy's client first
        client = f"{forwarded},{client}"
    path = req.path + ("?" + req.query if req.query else "")
    version = ".".join(str(v) for v in req.version) if isinstance(req.version, tuple) else req.version
    status = getattr(resp, "status_code", None) or str(resp.status).split(" ", 1)[0]
    sent = getattr(resp, "sent", None)
    message = (
        f'{client} "{req.method} {mask_secrets(path)} HTTP/{version}" status: {status} '
        f"len: {sent if sent is not None else '-'} time: {request_time.total_seconds():.7f}"
    )
    request_id = environ.get(REQUEST_ID_ENV)
    if not request_id:
        return message, None
    current = oslo_context.get_current()
    if current is None or current.request_id != request_id:
        current = oslo_context.RequestContext(
            request_id=request_id, global_request_id=environ.get(GLOBAL_REQUEST_ID_ENV), overwrite=False
        )
    ctx = environ.get(CONTEXT_KEY)
    if ctx is not None and ctx.request_id == request_id:
        current.user_id, current.project_id = ctx.user_id, ctx.project_id
    return message, current


class AccessLogger(glogging.Logger):
    """gunicorn's logger with its access hook writing the service's access line (oslo.log), and
    its own error lines masked like the rest."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        install_masking([self.error_log, self.access_log])
        self._access = logging.getLogger(ACCESS_LOGGER)

    def access(self, resp, req, environ, request_time) -> None:
        try:
            message, ctx = access_line(resp, req, environ or {}, request_time)
            self._access.info(message, extra={"context": ctx} if ctx is not None else None)
        except Exception:  # noqa: BLE001 - a log line never fails a request
            self.error_log.exception("Writing the access log line failed")
