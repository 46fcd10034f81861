"""Authentication in front of both the API and the registry.

``[paste_deploy] flavor = keystone``: keystonemiddleware ``auth_token`` validates the token
(with its memcached cache when ``[keystone_authtoken] memcached_servers`` is set) and the
context middleware refuses anything not ``Confirmed`` with 401.
Any other flavor: trusted-headers development mode, announced with a loud warning.
"""

from __future__ import annotations

import collections
import datetime
import hashlib
import json
import threading
import time
from collections.abc import Callable

from oslo_config import cfg
from oslo_log import log as logging

from glance_service import context as context_mod
from glance_service.common.config import keystone_auth_enabled
from glance_service.common.registrar import registrar
from glance_service.context import CONTEXT_KEY

LOG = logging.getLogger(__name__)

# duplicates: oslo.config declarations look alike in every module (options are declared
# where they are read, in oslo's one shape); what they share is the library's form.
auth_cache_opts = [
    cfg.IntOpt(
        "token_local_cache_seconds",
        default=30,
        min=0,
        help="Seconds a token validated by keystonemiddleware is remembered in the process "
        "itself (never past the token's expiry), so that a client's next requests skip the "
        "memcached round trip and keystonemiddleware's work. A revoked token keeps working for "
        "at most this long here (keystonemiddleware's own cache, token_cache_time, already allows "
        "300 s). 0 disables it.",
    ),
    cfg.IntOpt(
        "token_local_cache_size",
        default=10000,
        min=1,
        help="Tokens remembered per process (least recently used ones are forgotten first).",
    ),
]

# What keystonemiddleware sets after a validation that the context reads (the token itself
# is the client's own header and is kept as sent).
_IDENTITY_KEYS = (
    "HTTP_X_IDENTITY_STATUS",
    "HTTP_X_USER_ID",
    "HTTP_X_USER",
    "HTTP_X_PROJECT_ID",
    "HTTP_X_TENANT_ID",
    "HTTP_X_ROLES",
    "HTTP_X_ROLE",
    "HTTP_X_USER_DOMAIN_ID",
    "HTTP_X_PROJECT_DOMAIN_ID",
    "HTTP_X_SERVICE_ROLES",
    "HTTP_X_SERVICE_CATALOG",
)


class ContextMiddleware:
    """Puts a RequestContext into ``environ['glance.context']`` for the handlers."""

    def __init__(self, app: Callable, require_confirmed: bool):
        self.app = app
        self.require_confirmed = require_confirmed

    def __call__(self, environ: dict, start_response: Callable):
        if self.require_confirmed and environ.get("HTTP_X_IDENTITY_STATUS") != "Confirmed":
            return _unauthorized(environ, start_response)
        ctx = context_mod.from_environ(environ)
        if not self.require_confirmed and not (ctx.project_id or ctx.user_id or ctx.roles):
            # Like Glance's unauthenticated-context: a header-less caller is an admin.
            ctx.roles = ["admin"]
            ctx.is_admin = True
        environ[CONTEXT_KEY] = ctx
        return self.app(environ, start_response)


class LocalTokenCache:
    """Remembers, in this process, the identity keystonemiddleware confirmed for a token.

    On a hit the request's context is built from the remembered identity (never from headers
    the client sent besides its token) and keystonemiddleware is skipped; a miss, a request
    with a service token, or an expired entry goes through keystonemiddleware as before."""

    def __init__(self, auth_app: Callable, app: Callable, seconds: int, size: int, clock=time.monotonic):
        self.auth_app = auth_app  # keystonemiddleware around ``remember(app)``
        self.app = app
        self.seconds = seconds
        self.size = size
        self.clock = clock
        self._entries: collections.OrderedDict[bytes, tuple[float, dict]] = collections.OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()

    def __call__(self, environ: dict, start_response: Callable):
        token = environ.get("HTTP_X_AUTH_TOKEN")
        if not token or environ.get("HTTP_X_SERVICE_TOKEN"):
            return self.auth_app(environ, start_response)
        key = self._key(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if entry[0] > self.clock():
                    self._entries.move_to_end(key)
                else:
                    del self._entries[key]
                    entry = None
        if entry is None:
            return self.auth_app(environ, start_response)
        trusted = dict(entry[1])
        trusted["HTTP_X_AUTH_TOKEN"] = token
        for key in (context_mod.REQUEST_ID_ENV, context_mod.GLOBAL_REQUEST_ID_ENV):
            if key in environ:
                trusted[key] = environ[key]
        environ[CONTEXT_KEY] = context_mod.from_environ(trusted)
        return self.app(environ, start_response)

    def remember(self, app: Callable) -> Callable:
        """``app`` as keystonemiddleware's inner app, remembering what it confirmed."""

        def inner(environ: dict, start_response: Callable):
            token = environ.get("HTTP_X_AUTH_TOKEN")
            if (
                token
                and environ.get("HTTP_X_IDENTITY_STATUS") == "Confirmed"
                and not environ.get("HTTP_X_SERVICE_TOKEN")
            ):
                expires = _expiry(environ.get("keystone.token_info"))
                ttl = self.seconds if expires is None else min(self.seconds, expires - time.time())
                if ttl > 0:
                    identity = {k: environ[k] for k in _IDENTITY_KEYS if k in environ}
                    with self._lock:
                        self._entries[self._key(token)] = (self.clock() + ttl, identity)
                        self._entries.move_to_end(self._key(token))
                        while len(self._entries) > self.size:
                            self._entries.popitem(last=False)
            return app(environ, start_response)

        return inner


def _expiry(token_info: dict | None) -> float | None:
    """The token's expiry (Unix time) from keystonemiddleware's token data, if it says."""
    if not isinstance(token_info, dict):
        return None
    body = token_info.get("token") or token_info.get("access", {}).get("token") or {}
    text = body.get("expires_at") or body.get("expires")
    if not isinstance(text, str):
        return None
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


register_opts = registrar((None, auth_cache_opts))


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    return [(None, auth_cache_opts)]


def _unauthorized(environ: dict, start_response: Callable):
    body = json.dumps(
        {
            "error": {
                "code": 401,
                "title": "Unauthorized",
                "message": "The request you have made requires authentication.",
            }
        }
    ).encode()
    start_response(
        "401 Unauthorized",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def with_auth(app: Callable, conf: cfg.ConfigOpts, service: str) -> Callable:
    """Wrap ``app`` in token validation (or trusted headers) and the context middleware."""
    if keystone_auth_enabled(conf):
        from keystonemiddleware import auth_token

        inner = ContextMiddleware(app, require_confirmed=True)
        register_opts(conf)
        if not conf.token_local_cache_seconds:
            return auth_token.AuthProtocol(inner, {"oslo_config_config": conf})
        cache = LocalTokenCache(None, app, conf.token_local_cache_seconds, conf.token_local_cache_size)
        cache.auth_app = auth_token.AuthProtocol(cache.remember(inner), {"oslo_config_config": conf})
        return cache
    LOG.warning(
        "%s: [paste_deploy] flavor is not 'keystone': identity is taken from the "
        "X-User-Id/X-Project-Id/X-Roles headers WITHOUT ANY AUTHENTICATION. Use this only "
        "for development on a trusted host; set [paste_deploy] flavor = keystone in production.",
        service,
    )
    return ContextMiddleware(app, require_confirmed=False)


def get_context(environ: dict) -> context_mod.RequestContext:
    return environ[CONTEXT_KEY]
