"""Authentication in front of both the API and the registry.

``[paste_deploy] flavor = keystone``: keystonemiddleware ``auth_token`` validates the token
(with its memcached cache when ``[keystone_authtoken] memcached_servers`` is set) and the
context middleware refuses anything not ``Confirmed`` with 401.
Any other flavor: trusted-headers development mode, announced with a loud warning.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from oslo_config import cfg
from oslo_log import log as logging

from glance_service import context as context_mod
from glance_service.common.config import keystone_auth_enabled

LOG = logging.getLogger(__name__)

CONTEXT_KEY = "glance.context"


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
        return auth_token.AuthProtocol(inner, {"oslo_config_config": conf})
    LOG.warning(
        "%s: [paste_deploy] flavor is not 'keystone': identity is taken from the "
        "X-User-Id/X-Project-Id/X-Roles headers WITHOUT ANY AUTHENTICATION. Use this only "
        "for development on a trusted host; set [paste_deploy] flavor = keystone in production.",
        service,
    )
    return ContextMiddleware(app, require_confirmed=False)


def get_context(environ: dict) -> context_mod.RequestContext:
    return environ[CONTEXT_KEY]
