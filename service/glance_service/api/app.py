"""The glance-api WSGI application: the pipeline, built once per worker process.

Order (Glance's paste pipeline, minus what this service does not have): request id →
``/healthcheck`` → proxy headers → version negotiation (unauthenticated) → auth (keystone
``auth_token`` or trusted headers) → request context → router → handlers.
"""

from __future__ import annotations

from collections.abc import Callable

from oslo_config import cfg
from oslo_log import log as logging
from oslo_middleware import http_proxy_to_wsgi

from glance_service import context as context_mod
from glance_service.api import options, versions, views, wiring
from glance_service.api.router import Router
from glance_service.api.routes import routes
from glance_service.common.auth import with_auth
from glance_service.images import policy as policy_mod
from glance_service.images import schema as schema_mod

LOG = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-openstack-request-id"


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Every option glance-api reads (idempotent)."""
    wiring.register_opts(conf)
    versions.register_opts(conf)
    views.register_opts(conf)
    options.register_opts(conf)
    schema_mod.register_opts(conf)


class RequestId:
    """Gives every request an id (the client's ``X-Openstack-Request-Id`` if it sent one)
    and returns it on every response, errors and health checks included."""

    def __init__(self, app: Callable):
        self.app = app

    def __call__(self, environ: dict, start_response: Callable):
        request_id = context_mod.request_id_from_environ(environ)
        # Downstream (the context) reads the same header, so the id is the same everywhere.
        environ["HTTP_X_OPENSTACK_REQUEST_ID"] = request_id
        environ["openstack.request_id"] = request_id

        def start(status, headers, exc_info=None):
            headers = [h for h in headers if h[0].lower() != REQUEST_ID_HEADER]
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


class Healthcheck:
    """``GET /healthcheck`` → 200 ``OK`` without authentication (load balancers, systemd)."""

    def __init__(self, app: Callable, path: str = "/healthcheck"):
        self.app = app
        self.path = path

    def __call__(self, environ: dict, start_response: Callable):
        if environ.get("PATH_INFO") == self.path and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"OK"] if environ["REQUEST_METHOD"] == "GET" else [b""]
        return self.app(environ, start_response)


def build_services(conf: cfg.ConfigOpts) -> wiring.Services:
    return wiring.Services(
        conf=conf,
        data=wiring.build_data_api(conf),
        stores=wiring.build_stores(conf),
        policy=policy_mod.Enforcer(conf),
        schema=schema_mod.ImageSchema.from_conf(conf),
        view=views.ImageView.from_conf(conf),
    )


def build_app(services: wiring.Services) -> Callable:
    conf = services.conf
    app: Callable = Router(routes(), services)
    app = with_auth(app, conf, "glance-api")
    app = versions.VersionNegotiation(app, conf)
    app = http_proxy_to_wsgi.HTTPProxyToWSGI(app, {"oslo_config_config": conf})
    app = Healthcheck(app)
    return RequestId(app)


def app_factory(conf: cfg.ConfigOpts, services: wiring.Services | None = None) -> Callable:
    """The WSGI application for one worker process."""
    register_opts(conf)
    return build_app(services or build_services(conf))
