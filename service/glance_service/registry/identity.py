"""The caller's identity from glance-api to glance-registry, signed with a shared secret.

glance-api has already validated the user's token (keystonemiddleware ``auth_token``) before it
calls the registry. Without a secret the registry validates the same token again on every call
(a memcached round trip plus keystonemiddleware's own work: about a fifth of the registry's CPU
per call). With ``registry_identity_secret`` set on both sides, the API sends the identity it
already trusts, and the registry accepts it only with a valid HMAC-SHA256 over the identity,
a timestamp and the digest of the call's body:

    X-Glance-Identity:            base64url(JSON {"t": unix time, "u": user, "p": project,
                                  "r": roles, "sr": service roles, "ud"/"pd": domains})
    X-Glance-Identity-Signature:  hex HMAC-SHA256(secret, identity + "\\n" + sha256hex(body))

Plain identity headers (``X-Roles`` ...) are never trusted in keystone mode: anyone on the
network reaches the registry's port. The signature binds the identity to one call's body and a
time window (``registry_identity_max_age``), so a captured call can neither be altered nor
replayed later. A registry without the secret ignores these headers and validates the token as
before; a wrong signature is a 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
from collections.abc import Callable

from oslo_config import cfg
from oslo_log import log as logging

from glance_service import context as context_mod
from glance_service.common import auth
from glance_service.common.registrar import registrar
from glance_service.context import RequestContext

LOG = logging.getLogger(__name__)

IDENTITY_HEADER = "X-Glance-Identity"
SIGNATURE_HEADER = "X-Glance-Identity-Signature"
_IDENTITY_ENV = "HTTP_X_GLANCE_IDENTITY"
_SIGNATURE_ENV = "HTTP_X_GLANCE_IDENTITY_SIGNATURE"

identity_opts = [
    cfg.StrOpt(
        "registry_identity_secret",
        secret=True,
        help="Shared secret between glance-api and glance-registry (the same value on both). "
        "When set, glance-api signs the identity it has already validated and glance-registry "
        "accepts it instead of validating the user's token a second time. Unset: the registry "
        "validates every call's token itself (slower).",
    ),
    cfg.IntOpt(
        "registry_identity_max_age",
        default=300,
        min=1,
        help="Seconds a signed identity stays valid (either side of the registry's clock): "
        "bounds replays and the clock skew tolerated between API and registry hosts.",
    ),
]


register_opts = registrar((None, identity_opts))


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    return [(None, identity_opts)]


class InvalidIdentity(Exception):
    pass


def _mac(secret: str, identity: str, body: bytes) -> str:
    message = identity.encode() + b"\n" + hashlib.sha256(body).hexdigest().encode()
    # hmac.digest: the one-shot C path, the same MAC as hmac.new(...).hexdigest() at about
    # half the cost (twice per registry call: signed by glance-api, checked by the registry).
    return hmac.digest(secret.encode(), message, "sha256").hex()


def sign(secret: str, ctx: RequestContext, body: bytes, now: float | None = None) -> dict[str, str]:
    """The headers that carry ``ctx`` for a call whose body is ``body``."""
    claims = {
        "t": time.time() if now is None else now,
        "u": ctx.user_id,
        "p": ctx.project_id,
        "r": list(ctx.roles),
        "sr": list(ctx.service_roles),
        "ud": ctx.user_domain_id,
        "pd": ctx.project_domain_id,
    }
    identity = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode()
    return {IDENTITY_HEADER: identity, SIGNATURE_HEADER: _mac(secret, identity, body)}


def verify(
    secret: str, identity: str, signature: str, body: bytes, max_age: float, now: float | None = None
) -> dict:
    """The claims of a valid signed identity; ``InvalidIdentity`` otherwise."""
    if not hmac.compare_digest(_mac(secret, identity, body), signature or ""):
        raise InvalidIdentity("bad signature")
    try:
        claims = json.loads(base64.urlsafe_b64decode(identity.encode()))
        age = (time.time() if now is None else now) - float(claims["t"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidIdentity(f"malformed identity: {exc}") from None
    if abs(age) > max_age:
        raise InvalidIdentity(f"identity signed {age:.0f} s away from this host's clock")
    return claims


def context_from_claims(claims: dict, request_id: str) -> RequestContext:
    roles = [str(r).lower() for r in claims.get("r") or []]
    return RequestContext(
        request_id=request_id,
        user_id=claims.get("u"),
        project_id=claims.get("p"),
        roles=roles,
        is_admin="admin" in roles,
        user_domain_id=claims.get("ud"),
        project_domain_id=claims.get("pd"),
        service_roles=[str(r).lower() for r in claims.get("sr") or []],
    )


class SignedIdentityMiddleware:
    """In front of the registry's authentication: a call with a valid signed identity goes
    straight to ``app`` with its context; any other call goes through ``authenticated``
    (keystonemiddleware or trusted headers) as before."""

    def __init__(self, app: Callable, authenticated: Callable, secret: str, max_age: int, max_body: int):
        self.app = app
        self.authenticated = authenticated
        self.secret = secret
        self.max_age = max_age
        self.max_body = max_body

    def __call__(self, environ: dict, start_response: Callable):
        identity = environ.get(_IDENTITY_ENV)
        if identity is None:
            return self.authenticated(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length < 0 or length > self.max_body:
            # No length (chunked), or too large: not what glance-api sends. The token path and
            # the RPC parser's own limits decide.
            return self.authenticated(environ, start_response)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            claims = verify(self.secret, identity, environ.get(_SIGNATURE_ENV, ""), body, self.max_age)
        except InvalidIdentity as exc:
            LOG.warning("Refused a registry call with an invalid signed identity: %s", exc)
            return auth._unauthorized(environ, start_response)
        ctx = context_from_claims(claims, context_mod.request_id_from_environ(environ))
        ctx.global_request_id = context_mod.global_request_id_from_environ(environ)
        environ[auth.CONTEXT_KEY] = ctx
        return self.app(environ, start_response)


def secret_of(conf: cfg.ConfigOpts) -> str | None:
    register_opts(conf)
    return conf.registry_identity_secret or None
