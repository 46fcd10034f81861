"""gunicorn's C HTTP parser (gunicorn_h1c) serves both processes (common/wsgi_server.py), and it
reads requests as gunicorn's Python parser does: the same method, path, query, headers and
body, and the same refusals of requests beyond the limits the service sets."""

from __future__ import annotations

import pytest
from gunicorn.config import Config
from gunicorn.http import errors, message
from gunicorn.http.parser import RequestParser
from oslo_config import cfg

from glance_service.common import config, wsgi_server


def _options() -> dict:
    conf = cfg.ConfigOpts()
    conf.register_opts(config.server_opts(9292))
    conf.register_opt(cfg.BoolOpt("debug", default=False))
    conf([])
    wsgi_server.register_opts(conf)
    return wsgi_server.gunicorn_options(conf, "glance-api")


LIMITS = ("limit_request_line", "limit_request_field_size", "forwarded_allow_ips", "secure_scheme_headers")


def _config(parser: str) -> Config:
    options = _options()
    gunicorn_cfg = Config()
    for key in LIMITS:
        gunicorn_cfg.set(key, options[key])
    gunicorn_cfg.set("http_parser", parser)
    return gunicorn_cfg


def test_the_service_asks_for_the_c_parser_and_has_it():
    options = _options()
    assert options["http_parser"] == "fast"
    assert message._check_fast_parser(_config("fast")) is True


def _parse(parser: str, raw: bytes) -> list[tuple]:
    out = []
    for req in RequestParser(_config(parser), iter([raw]), ("127.0.0.1", 1)):
        body = req.body.read()
        out.append((req.method, req.path, req.query, req.version, req.headers, req.trailers, body))
        if len(out) > 5:
            break
    return out


REQUESTS = [
    b"GET /v2/images/0b6c3f7e-6c0e-4f7e-9d6a-3a0a8d7c2f11 HTTP/1.1\r\nHost: h\r\n"
    b"X-Auth-Token: gAAAAA-token\r\nAccept: application/json\r\n\r\n",
    b"GET /v2/images?limit=2&name=a%20b&sort=created_at:desc HTTP/1.1\r\nHost: h\r\n\r\n"
    b"HEAD /versions HTTP/1.0\r\n\r\n",
    # Nova and glanceclient upload chunked
    b"PUT /v2/images/x/file HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Type: application/octet-stream\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    b"POST /v2/images HTTP/1.1\r\nHost: h\r\nContent-Length: 13\r\n"
    b'Content-Type: application/json\r\n\r\n{"name": "a"}',
    b"PATCH /v2/images/x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
    b"Content-Type: application/openstack-images-v2.1-json-patch\r\nX-Empty:\r\n\r\n[]",
]


@pytest.mark.parametrize("raw", REQUESTS)
def test_both_parsers_read_the_same_request(raw):
    assert _parse("fast", raw) == _parse("python", raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /" + b"a" * 17000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",  # request line over the limit
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n",  # a field over it
        b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
        b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: h\r\n\r\n",
    ],
)
def test_both_parsers_refuse_the_same_bad_request(raw):
    refused = {}
    for parser in ("python", "fast"):
        with pytest.raises(errors.ParseException) as caught:
            _parse(parser, raw)
        refused[parser] = type(caught.value)
    assert refused["fast"] is refused["python"], refused
