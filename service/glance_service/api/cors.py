"""CORS for dashboards served from another origin: oslo.middleware's CORS middleware with
upstream Glance's ``[cors]`` defaults (``glance.common.config.set_cors_middleware_defaults``).

In the pipeline where upstream's paste pipeline has it: first after the ``/healthcheck``
split, before ``http_proxy_to_wsgi`` (``api/app.py``). Left out of the pipeline when
``[cors] allowed_origin`` is unset (upstream's middleware then passes every request through).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from oslo_config import cfg
from oslo_middleware import cors

# Upstream Glance's defaults for oslo.middleware's [cors] options.
DEFAULTS = {
    "allow_headers": [
        "Content-MD5",
        "X-Image-Meta-Checksum",
        "X-Storage-Token",
        "Accept-Encoding",
        "X-Auth-Token",
        "X-Identity-Status",
        "X-Roles",
        "X-Service-Catalog",
        "X-User-Id",
        "X-Tenant-Id",
        "X-OpenStack-Request-ID",
    ],
    "expose_headers": [
        "X-Image-Meta-Checksum",
        "X-Auth-Token",
        "X-Subject-Token",
        "X-Service-Token",
        "X-OpenStack-Request-ID",
    ],
    "allow_methods": ["GET", "PUT", "POST", "DELETE", "PATCH"],
}


def set_defaults() -> None:
    """Upstream's defaults (also the ``oslo.config.opts.defaults`` entry point, for the samples)."""
    cors.set_defaults(**DEFAULTS)


def register_opts(conf: cfg.ConfigOpts) -> None:
    set_defaults()
    conf.register_opts(cors.CORS_OPTS, group="cors")


def wrap(app: Callable, conf: cfg.ConfigOpts) -> Callable:
    """``app`` behind the CORS middleware when ``[cors] allowed_origin`` is set, else ``app``."""
    register_opts(conf)
    if not conf.cors.allowed_origin:
        return app
    return cors.CORS(app, conf)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """``[cors]`` as glance-api reads it (upstream's defaults), for the sample config."""
    opts = copy.deepcopy(cors.CORS_OPTS)
    cfg.set_defaults(opts, **DEFAULTS)
    return [("cors", opts)]
