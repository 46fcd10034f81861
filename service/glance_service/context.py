"""The request context: who is calling, for which project, with which roles.

Built from the identity headers that keystonemiddleware's ``auth_token`` sets after it has
validated a token (``X-Identity-Status: Confirmed``), or, in the development
trusted-headers mode (``[paste_deploy] flavor`` empty), from the same headers as the
client sent them. Both the API and the registry build it the same way.
"""

from __future__ import annotations

import dataclasses
import uuid


@dataclasses.dataclass
class RequestContext:
    request_id: str = dataclasses.field(default_factory=lambda: "req-" + str(uuid.uuid4()))
    user_id: str | None = None
    project_id: str | None = None
    roles: list[str] = dataclasses.field(default_factory=list)
    auth_token: str | None = None
    is_admin: bool = False
    read_only: bool = False
    user_domain_id: str | None = None
    project_domain_id: str | None = None
    service_roles: list[str] = dataclasses.field(default_factory=list)
    # the request's service catalog as auth_token gives it (X-Service-Catalog), raw JSON
    service_catalog: str | None = None
    # the caller's own request id (a valid X-Openstack-Request-Id: req-<uuid>), as oslo.context
    global_request_id: str | None = None

    @property
    def global_id(self) -> str:
        """The id to pass on to the services this request calls (oslo.context's ``global_id``)."""
        return self.global_request_id or self.request_id

    @property
    def owner(self) -> str | None:
        """The project that owns what this caller creates."""
        return self.project_id

    def policy_credentials(self) -> dict:
        """Credentials in the shape oslo.policy rules expect (``role:``, ``project_id:``...)."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": list(self.roles),
            "service_roles": list(self.service_roles),
            "is_admin": self.is_admin,
            "user_domain_id": self.user_domain_id,
            "project_domain_id": self.project_domain_id,
            "system_scope": None,
        }

    def to_headers(self) -> dict[str, str]:
        """Headers that carry this context to the registry (token, or trusted identity headers).

        ``X-Openstack-Request-Id`` carries the global id, so the registry logs the same one."""
        headers = {"X-Openstack-Request-Id": self.global_id}
        if self.auth_token:
            headers["X-Auth-Token"] = self.auth_token
        if self.user_id:
            headers["X-User-Id"] = self.user_id
        if self.project_id:
            headers["X-Project-Id"] = self.project_id
        if self.roles:
            headers["X-Roles"] = ",".join(self.roles)
        if self.user_domain_id:
            headers["X-User-Domain-Id"] = self.user_domain_id
        if self.project_domain_id:
            headers["X-Project-Domain-Id"] = self.project_domain_id
        return headers

    @classmethod
    def admin(cls, request_id: str | None = None) -> RequestContext:
        """A context for the service's own maintenance work (recovery at start-up, scrubbing)."""
        ctx = cls(roles=["admin"], is_admin=True)
        if request_id:
            ctx.request_id = request_id
        return ctx


def _split_roles(value: str | None) -> list[str]:
    return [r.strip().lower() for r in (value or "").split(",") if r.strip()]


# Set by oslo.middleware's RequestId, the outermost middleware of both services: a new id for
# each request, and the caller's X-Openstack-Request-Id when it is a valid req-<uuid>.
REQUEST_ID_ENV = "openstack.request_id"
GLOBAL_REQUEST_ID_ENV = "openstack.global_request_id"
# The RequestContext built by the auth pipeline (common.auth), for every later middleware.
CONTEXT_KEY = "glance.context"


def request_id_from_environ(environ: dict) -> str:
    """This request's id (oslo.middleware's RequestId), or a new one outside that pipeline.

    Never the caller's X-Openstack-Request-Id: that is the global id (below)."""
    return environ.get(REQUEST_ID_ENV) or "req-" + str(uuid.uuid4())


def global_request_id_from_environ(environ: dict) -> str | None:
    return environ.get(GLOBAL_REQUEST_ID_ENV)


def from_environ(environ: dict, admin_role: str = "admin") -> RequestContext:
    """Build the context from identity headers already in the WSGI environ.

    ``is_admin`` follows Glance's ``context_is_admin`` default (``role:admin`` in any
    project); the policy layer may refine it.
    """
    roles = _split_roles(environ.get("HTTP_X_ROLES") or environ.get("HTTP_X_ROLE"))
    return RequestContext(
        request_id=request_id_from_environ(environ),
        global_request_id=global_request_id_from_environ(environ),
        user_id=environ.get("HTTP_X_USER_ID") or environ.get("HTTP_X_USER"),
        project_id=environ.get("HTTP_X_PROJECT_ID") or environ.get("HTTP_X_TENANT_ID"),
        roles=roles,
        auth_token=environ.get("HTTP_X_AUTH_TOKEN"),
        is_admin=admin_role in roles,
        user_domain_id=environ.get("HTTP_X_USER_DOMAIN_ID"),
        project_domain_id=environ.get("HTTP_X_PROJECT_DOMAIN_ID"),
        service_roles=_split_roles(environ.get("HTTP_X_SERVICE_ROLES")),
        service_catalog=environ.get("HTTP_X_SERVICE_CATALOG"),
    )
