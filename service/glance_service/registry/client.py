"""``RegistryClient``: the data API (``db/interface.py``) over HTTP to glance-registry.

Each thread keeps one HTTP/1.1 connection alive between calls (gunicorn's threads each
serve one request at a time, so a thread never needs more than one): ``registry.http_hop``,
the part of ``http.client`` the hop needs, at a fraction of ``requests``' per-call CPU (which
was a third of a metadata request) and of ``http.client``'s.
The caller's identity travels signed (``registry_identity_secret``, see ``registry.identity``)
or as its token (or, in trusted-headers mode, its identity headers). The API's own
maintenance work has no token: it is signed as the service, or, without a secret and with
``[paste_deploy] flavor = keystone``, authenticated with the credentials in
``[keystone_authtoken]``.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common import json_bytes, metrics
from glance_service.common.config import keystone_auth_enabled, paste_deploy_opts
from glance_service.common.idle_socket import closed_by_peer
from glance_service.context import RequestContext
from glance_service.db.interface import OPERATIONS
from glance_service.registry import http_hop, identity

LOG = logging.getLogger(__name__)

registry_client_opts = [
    cfg.HostAddressOpt("registry_host", default="127.0.0.1", help="Address of the glance-registry server."),
    cfg.PortOpt("registry_port", default=9191, help="Port of the glance-registry server."),
    cfg.StrOpt(
        "registry_client_protocol",
        default="http",
        choices=["http", "https"],
        help="Protocol to talk to glance-registry with.",
    ),
    cfg.StrOpt("registry_client_ca_file", help="CA bundle to verify glance-registry's certificate (https)."),
    cfg.BoolOpt(
        "registry_client_insecure",
        default=False,
        help="Do not verify glance-registry's certificate (https). For testing only.",
    ),
    cfg.IntOpt(
        "registry_client_timeout",
        default=10,
        min=1,
        help="Seconds glance-api waits for glance-registry to answer one call (connecting, "
        "sending, the answer; a read resent on a fresh connection counts within the same "
        "time). After it the API request fails with 503. Every registry call is one "
        "metadata transaction (image data never goes through the registry); whole API "
        "requests stayed under 2 s at p99 with 64 clients on 2 cores, so 10 s leaves a "
        "margin while a hung registry holds API threads and clients for seconds, not "
        "minutes. Upstream Glance's v1 registry client had this option with 600 s.",
    ),
]

_KEYSTONE_GROUP = "keystone_authtoken"


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(registry_client_opts)
    identity.register_opts(conf)
    # The flavor decides whether calls without a user token use the service's own token.
    conf.register_opts(paste_deploy_opts, group="paste_deploy")


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    return [(None, registry_client_opts + identity.identity_opts)]


class _ServiceAuth:
    """The service's own token from ``[keystone_authtoken]``; keystoneauth caches and renews it."""

    def __init__(self, conf: cfg.ConfigOpts):
        from keystoneauth1 import loading, session

        loading.register_auth_conf_options(conf, _KEYSTONE_GROUP)
        plugin = loading.load_auth_from_conf_options(conf, _KEYSTONE_GROUP)
        if plugin is None:
            raise exceptions.ServiceUnavailable(
                "glance-api has no service credentials for its own calls to glance-registry: "
                "set [keystone_authtoken] auth_type = password with auth_url, username, password, "
                "project_name and the domains."
            )
        self._session = session.Session(auth=plugin)
        self._lock = threading.Lock()

    def token(self) -> str:
        from keystoneauth1 import exceptions as ks_exceptions

        with self._lock:
            try:
                return self._session.get_token()
            except ks_exceptions.ClientException as exc:
                raise exceptions.ServiceUnavailable(
                    f"Cannot get the service token from Keystone for glance-registry calls: {exc}"
                ) from exc

    def invalidate(self) -> None:
        with self._lock:
            self._session.invalidate()


class _NotSent(Exception):
    """The connection could not be made: nothing reached the registry."""


class _Connection:
    """One thread's keep-alive connection to the registry, with counters for tests."""

    def __init__(self, factory):
        self._factory = factory
        self.conn: http_hop.Connection | None = None
        self.connects = 0
        self.requests = 0
        self.last_used = 0.0

    def open(self, timeout: float) -> http_hop.Connection:
        """The connection, its socket timeout set to ``timeout``; reconnected first if the
        registry closed it while idle (its keep-alive timeout, a restart): a request on such
        a socket would fail after being sent, and only reads may be sent twice. The check is
        one ``poll`` without waiting, next to the several system calls of the call itself."""
        conn = self.conn
        if conn is not None and conn.sock is not None and closed_by_peer(conn.sock):
            self.close()
            conn = None
        if conn is None or conn.sock is None:
            if conn is None:
                conn = self.conn = self._factory()
            conn.timeout = timeout
            conn.connect()
            self.connects += 1
        else:
            conn.sock.settimeout(timeout)
        return conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class RegistryClient:
    """Same methods and results as ``DatabaseAPI``, over glance-registry's ``/rpc``: the
    methods of ``db.interface.OPERATIONS`` are added below the class."""

    def __init__(self, conf: cfg.ConfigOpts):
        register_opts(conf)
        self._conf = conf
        host = conf.registry_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        self.url = f"{conf.registry_client_protocol}://{host}:{conf.registry_port}/rpc"
        self._host = conf.registry_host
        self._port = conf.registry_port
        self.timeout = conf.registry_client_timeout
        self._ssl: ssl.SSLContext | None = None
        if conf.registry_client_protocol == "https":
            self._ssl = ssl.create_default_context(cafile=conf.registry_client_ca_file or None)
            if conf.registry_client_insecure:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        self._secret = conf.registry_identity_secret or None
        self._keystone = keystone_auth_enabled(conf)
        self._local = threading.local()
        self._service_auth: _ServiceAuth | None = None
        self._service_auth_lock = threading.Lock()

    # -- transport --------------------------------------------------------------
    def _new_connection(self) -> http_hop.Connection:
        return http_hop.Connection(self._host, self._port, self.timeout, self._ssl)

    def _connection(self) -> _Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _Connection(self._new_connection)
        return conn

    def _service(self) -> _ServiceAuth:
        with self._service_auth_lock:
            if self._service_auth is None:
                self._service_auth = _ServiceAuth(self._conf)
            return self._service_auth

    def _headers(self, ctx: RequestContext, body: bytes) -> tuple[dict[str, str], bool]:
        headers = ctx.to_headers()
        headers["Content-Type"] = "application/json"
        if self._secret:
            # The registry takes this instead of validating the token again; the token still
            # goes along for a registry without the secret.
            headers.update(identity.sign(self._secret, ctx, body))
            return headers, False
        uses_service_token = False
        if not ctx.auth_token and self._keystone:
            headers["X-Auth-Token"] = self._service().token()
            uses_service_token = True
        return headers, uses_service_token

    def _send(
        self, conn: _Connection, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes]:
        """One POST, each socket operation bounded by ``timeout``. ``_NotSent`` when nothing
        can have reached the registry (safe to send again); ``TimeoutError`` when it did not
        answer in time; other ``OSError``/``HTTPException`` after the request may have
        reached it."""
        try:
            http_conn = conn.open(timeout)
        except TimeoutError:
            conn.close()
            raise
        except OSError as exc:
            conn.close()
            raise _NotSent(f"{type(exc).__name__}: {exc}") from exc
        try:
            http_conn.request("POST", "/rpc", body=body, headers=headers)
            resp = http_conn.getresponse()
            data = resp.read()
        except BaseException:
            conn.close()
            raise
        conn.requests += 1
        conn.last_used = time.monotonic()
        if resp.will_close:
            conn.close()
        return resp.status, data

    def _call(self, command: str, ctx: RequestContext, kwargs: dict[str, Any], resend: bool) -> Any:
        with metrics.registry_call(command):  # issue 18 metrics: latency and errors by operation
            return self._call_once(command, ctx, kwargs, resend)

    def _call_once(self, command: str, ctx: RequestContext, kwargs: dict[str, Any], resend: bool) -> Any:
        """One registry call, within ``registry_client_timeout`` in all. Sent again at most
        once: any call when the connection could not be made (nothing was sent), a read when
        the connection broke after sending (a kept-alive connection the registry dropped as
        the request went out: a restart). Never after a timeout: the registry is there but
        does not answer, and a second wait would only double the client's. ``resend``: the
        operation is a READ (``db.interface``)."""
        body = json.dumps({"command": command, "kwargs": kwargs}).encode()
        reconnect = renew_token = True
        deadline = time.monotonic() + self.timeout
        while True:
            headers, service_token = self._headers(ctx, body)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(ctx, command)
            conn = self._connection()
            try:
                status, data = self._send(conn, body, headers, remaining)
            except TimeoutError as exc:
                raise self._timed_out(ctx, command) from exc
            except _NotSent as exc:
                # Refused or unreachable before sending: any call may try once more.
                again, reconnect, error = reconnect, False, exc
                failure = f"The image registry at {self.url} is unavailable: {exc}"
            except (OSError, http.client.HTTPException) as exc:
                # Broke after sending: only a READ may be sent again (see the docstring).
                again, resend, error = resend, False, exc
                failure = (
                    f"The connection to the image registry at {self.url} broke before it answered "
                    f"({type(exc).__name__})."
                )
            else:
                if status == 401 and service_token and renew_token:
                    # The cached service token expired or was revoked: fetch a new one once
                    # (the registry refused the call before doing anything).
                    renew_token = False
                    self._service().invalidate()
                    continue
                return _result(status, data)
            if not again:
                raise exceptions.RegistryUnavailable(failure) from error
            LOG.debug("[%s] registry %s: %r; sending it again", ctx.request_id, command, error)

    def _timed_out(self, ctx: RequestContext, command: str) -> exceptions.RegistryUnavailable:
        LOG.warning(
            "[%s] glance-registry at %s did not answer %s within %s s (registry_client_timeout)",
            ctx.request_id,
            self.url,
            command,
            self.timeout,
        )
        exc = exceptions.RegistryUnavailable(
            f"The image registry at {self.url} did not answer within {self.timeout} s."
        )
        # A registry that stalled (not died) still holds the call and may run it later.
        exc.may_still_run = True
        return exc

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


# One forwarding method per declared operation (``db.interface.OPERATIONS``), compiled here
# once: ``client.image_get(ctx, image_id)`` sends ``{"command": "image_get", "kwargs":
# {"image_id": ..., "include_deleted": False}}``: every declared argument by name, defaults
# included, in declared order (what glance-registry of every version accepts). READs are sent
# again once after a broken connection (``_call``). ``image_activate`` is declared optional:
# the upload checks for it, and both data APIs have it.
for _op in OPERATIONS.values():
    _method = _op.define("return self._call({name}, ctx, {kwargs}, {resend})")
    _method.__module__, _method.__qualname__ = __name__, f"RegistryClient.{_op.name}"
    setattr(RegistryClient, _op.name, _method)
del _op, _method


def _result(status: int, data: bytes) -> Any:
    try:
        body = json_bytes.loads(data)
    except ValueError:
        body = None
    if status == 200 and isinstance(body, dict) and "result" in body:
        return body["result"]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("type"):
        raise _rebuild(exceptions.by_name(error["type"]), error.get("message"))
    # Not the registry's own error format: the auth middleware (401) or something in between.
    message = error.get("message") if isinstance(error, dict) else None
    cls = {401: exceptions.Unauthorized, 403: exceptions.Forbidden}.get(status)
    if cls is not None:
        raise cls(message)
    if status >= 500 or status == 200:
        raise exceptions.RegistryUnavailable(f"The image registry answered {status} unexpectedly")
    text = data[:200].decode("utf-8", "replace")
    raise exceptions.GlanceServiceError(f"The image registry answered {status}: {message or text}")


def _rebuild(cls: type[exceptions.GlanceServiceError], message: str | None) -> exceptions.GlanceServiceError:
    """The exception as the registry raised it (two classes take extra leading arguments)."""
    if issubclass(cls, exceptions.MethodNotAllowed):
        return cls([], message)
    if issubclass(cls, exceptions.RangeNotSatisfiable):
        return cls(None, message)
    return cls(message)
