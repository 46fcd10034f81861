"""Version discovery and negotiation (before authentication, like Glance).

``GET /versions`` → 200 with the list; ``GET /`` or any path whose first segment is not a
known version → 300 with the same list. A known version prefix (``/v2``, ``/v2.x``) or an
``Accept: application/vnd.openstack.images-v2[.x]`` header maps the request to the v2 router
as ``/v2/...``. The list depends on the configuration as in Glance (image cache, multi-store).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import webob
from oslo_config import cfg

from glance_service.common.registrar import registrar

versions_opts = [
    cfg.StrOpt(
        "public_endpoint",
        help="Public URL of the API as clients reach it (through a proxy or load balancer); used "
        "in the versions response. Default: the URL of the request.",
    ),
]


register_opts = registrar((None, versions_opts))


# (version, status) in Glance's order for a deployment without enabled_backends and
# without image_cache_dir.
VERSIONS = [
    ("2.15", "SUPPORTED"),
    ("2.9", "SUPPORTED"),
    ("2.17", "CURRENT"),
    ("2.7", "SUPPORTED"),
    ("2.6", "SUPPORTED"),
    ("2.5", "SUPPORTED"),
    ("2.4", "SUPPORTED"),
    ("2.3", "SUPPORTED"),
    ("2.2", "SUPPORTED"),
    ("2.1", "SUPPORTED"),
    ("2.0", "SUPPORTED"),
]
ALLOWED_PREFIXES = frozenset(
    {"v2", "v2.0", "v2.1", "v2.2", "v2.3", "v2.4", "v2.5", "v2.6", "v2.7", "v2.9", "v2.15", "v2.17"}
)
VND_MEDIA_TYPE = "application/vnd.openstack.images-"
# With [DEFAULT] enabled_backends (multi-store) Glance lists these in place of 2.9.
MULTISTORE_VERSIONS = [(v, "SUPPORTED") for v in ("2.13", "2.12", "2.11", "2.10", "2.9", "2.8")]


# With [DEFAULT] image_cache_dir Glance lists these first, in place of 2.15 and 2.17.
CACHE_VERSIONS = [("2.18", "CURRENT")] + [(v, "SUPPORTED") for v in ("2.17", "2.16", "2.15", "2.14")]


def versions_for(conf: cfg.ConfigOpts | None) -> list[tuple[str, str]]:
    base = VERSIONS
    if conf is not None and getattr(conf, "image_cache_dir", None):
        base = CACHE_VERSIONS + [(v, s) for v, s in VERSIONS if v not in ("2.15", "2.17")]
    if conf is None or not getattr(conf, "enabled_backends", None):
        return base
    out: list[tuple[str, str]] = []
    for version, status in base:
        out.extend(MULTISTORE_VERSIONS if version == "2.9" else [(version, status)])
    return out


def versions_body(base_url: str, versions: list[tuple[str, str]] | None = None) -> bytes:
    href = base_url.rstrip("/") + "/v2/"
    return json.dumps(
        {
            "versions": [
                {"id": f"v{version}", "status": status, "links": [{"rel": "self", "href": href}]}
                for version, status in (versions or VERSIONS)
            ]
        }
    ).encode()


class VersionNegotiation:
    def __init__(self, app: Callable, conf: cfg.ConfigOpts):
        self.app = app
        self.public_endpoint = conf.public_endpoint
        self.versions = versions_for(conf)
        self.allowed = ALLOWED_PREFIXES | {f"v{version}" for version, _ in self.versions}
        # With a fixed public endpoint the body never changes: build it once.
        self._fixed_body = (
            versions_body(self.public_endpoint, self.versions) if self.public_endpoint else None
        )

    def _versions(self, environ: dict, start_response: Callable, status: str):
        if self._fixed_body is not None:
            body = self._fixed_body
        else:
            body = versions_body(webob.Request(environ).application_url, self.versions)
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ: dict, start_response: Callable):
        path = environ.get("PATH_INFO", "") or ""
        stripped = path.lstrip("/")
        first, _, _rest = stripped.partition("/")
        if first == "versions":
            return self._versions(environ, start_response, "200 OK")
        accept = environ.get("HTTP_ACCEPT", "") or ""
        if accept.startswith(VND_MEDIA_TYPE):
            version = accept[len(VND_MEDIA_TYPE) :]
            remainder = path
        else:
            version = first
            idx = stripped.find("/")
            remainder = "" if idx == -1 else stripped[idx:]
        if version not in self.allowed:
            return self._versions(environ, start_response, "300 Multiple Choices")
        environ["api.version"] = 2
        environ["PATH_INFO"] = "/v2" + remainder
        return self.app(environ, start_response)
