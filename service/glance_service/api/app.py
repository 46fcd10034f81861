"""The glance-api WSGI application: the pipeline, built once per worker process.

Order (Glance's paste pipeline, minus what this service does not have, plus oslo.middleware's
request id as the other OpenStack services have it): request id (and the logging context,
``common.request_log``) → ``/healthcheck`` (``common.healthcheck``: oslo.middleware's, with
the registry, database and store checks) → CORS (``api.cors``, when ``[cors] allowed_origin``
is set) → proxy headers (``[oslo_middleware]
enable_proxy_headers_parsing``) → version negotiation (unauthenticated) → auth (keystone
``auth_token`` or trusted headers) → request context → the caller in the logging context →
router → handlers.
"""

from __future__ import annotations

from collections.abc import Callable

from oslo_config import cfg
from oslo_log import log as logging
from oslo_middleware import http_proxy_to_wsgi

from glance_service.api import cors, image_views, options, stage_proxy, versions, wiring
from glance_service.api.router import Router
from glance_service.api.routes import routes
from glance_service.common import healthcheck, notifications, request_log
from glance_service.common.auth import with_auth
from glance_service.images import image_schema as schema_mod
from glance_service.images import import_options, property_protections
from glance_service.images import policy as policy_mod

LOG = logging.getLogger(__name__)


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Every option glance-api reads (idempotent)."""
    wiring.register_opts(conf)
    versions.register_opts(conf)
    stage_proxy.register_opts(conf)
    image_views.register_opts(conf)
    options.register_opts(conf)
    schema_mod.register_opts(conf)
    healthcheck.register_opts(conf)
    # property protections and CORS (issue 18)
    property_protections.register_opts(conf)
    cors.register_opts(conf)
    notifications.register_opts(conf)  # notifications (issue 18)


def build_services(conf: cfg.ConfigOpts) -> wiring.Services:
    import_options.check_options(conf)
    services = wiring.Services(
        conf=conf,
        data=wiring.build_data_api(conf),
        stores=wiring.build_stores(conf),
        policy=policy_mod.Enforcer(conf),
        schema=schema_mod.ImageSchema.from_conf(conf),
        view=image_views.ImageView.from_conf(conf),
        notifier=notifications.build(conf),  # notifications (issue 18)
    )
    # property protections (issue 18): None when property_protection_file is unset
    services.protections = property_protections.PropertyRules.from_conf(conf, services.policy)
    return services


def build_app(services: wiring.Services) -> Callable:
    conf = services.conf
    app: Callable = request_log.LogIdentity(Router(routes(), services))
    app = with_auth(app, conf, "glance-api")
    app = versions.VersionNegotiation(app, conf)
    app = ProxyHeaders(app, {"oslo_config_config": conf})
    app = cors.wrap(app, conf)  # CORS (issue 18): first of upstream's api pipeline
    resources = healthcheck.Resources(conf, "glance-api", data_api=services.data, stores=services.stores)
    app = healthcheck.build(app, conf, resources)
    return request_log.with_request_ids(app)


class ProxyHeaders(http_proxy_to_wsgi.HTTPProxyToWSGI):
    """oslo.middleware's, straight to the application while ``[oslo_middleware]
    enable_proxy_headers_parsing`` is off (the default; read per request as oslo does): its
    webob wrapper inspects ``process_response``'s signature (``getfullargspec``) on every
    request, for a response it leaves as it is (issue 17)."""

    def __call__(self, environ: dict, start_response: Callable):
        if not self._conf_get("enable_proxy_headers_parsing"):
            return self.application(environ, start_response)
        return super().__call__(environ, start_response)


def app_factory(conf: cfg.ConfigOpts, services: wiring.Services | None = None) -> Callable:
    """The WSGI application for one worker process."""
    register_opts(conf)
    return build_app(services or build_services(conf))
