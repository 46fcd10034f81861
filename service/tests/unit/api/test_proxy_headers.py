"""oslo.middleware's HTTPProxyToWSGI in glance-api's pipeline (api/app.py): with
``[oslo_middleware] enable_proxy_headers_parsing`` off (the default) a request goes straight
through, without oslo.middleware's per-request ``getfullargspec`` (issue 17); on, the proxy's
headers decide the scheme and host as before."""

from __future__ import annotations

import webob
from oslo_config import cfg
from oslo_middleware import base as oslo_base
from oslo_middleware import http_proxy_to_wsgi

from glance_service.api import app as app_mod


def _seen(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ['wsgi.url_scheme']}://{environ.get('HTTP_HOST')}".encode()]


def _proxy(enabled: bool):
    conf = cfg.ConfigOpts()
    conf.register_opts(http_proxy_to_wsgi.OPTS, group="oslo_middleware")
    conf([], project="glance-proxy-headers-test", default_config_files=[])
    mw = app_mod.ProxyHeaders(_seen, conf)
    conf.set_override("enable_proxy_headers_parsing", enabled, group="oslo_middleware")
    return mw


def _get(app) -> str:
    req = webob.Request.blank(
        "/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "glance.example"}
    )
    return req.get_response(app).text


def test_off_goes_straight_through(monkeypatch):
    def inspected(*args):
        raise AssertionError("getfullargspec on the request path")

    monkeypatch.setattr(oslo_base, "getfullargspec", inspected)
    assert _get(_proxy(False)) == "http://localhost:80"


def test_on_parses_the_proxy_headers():
    assert _get(_proxy(True)) == "https://glance.example"
