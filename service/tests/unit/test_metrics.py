"""common.metrics without servers: off costs nothing, the hooks' arithmetic, the endpoint's
socket check (the real processes: tests/features/test_metrics.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from oslo_config import cfg

from glance_service.common import metrics

SERVICE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_off_by_default_nothing_imported_and_options_unchanged():
    # A fresh interpreter: every module of both services' request paths, options built as
    # serve() builds them, and still no prometheus_client (issue 17 measures every process).
    code = textwrap.dedent(
        """
        import sys
        from oslo_config import cfg
        from glance_service.common import metrics, wsgi_server
        import glance_service.api.app, glance_service.registry.server, glance_service.store
        import glance_service.images.import_workers, glance_service.registry.client
        conf = cfg.ConfigOpts()
        conf([])
        options = {"bind": ["127.0.0.1:9292"]}
        assert metrics.gunicorn_options(conf, "glance-api", options) is options
        app = object()
        assert metrics.serving(app, conf, "glance-api") is app
        with metrics.store_operation("file", "add"), metrics.uploading(), metrics.registry_call("x"):
            assert metrics.received(b"0123456789") == b"0123456789"
        assert "prometheus_client" not in sys.modules, "imported while off"
        assert "PROMETHEUS_MULTIPROC_DIR" not in __import__("os").environ
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": SERVICE}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


class _Counter:
    def __init__(self):
        self.values: dict[tuple, float] = {}

    def labels(self, *labels):
        self._key = labels
        return self

    def inc(self, amount: float = 1):
        self.values[getattr(self, "_key", ())] = self.values.get(getattr(self, "_key", ()), 0) + amount

    def observe(self, amount: float):
        self.inc(1)


class _Live:
    def __init__(self):
        self.children = {}
        for name in ("requests", "request_seconds", "downloaded", "store_seconds", "store_errors",
                     "registry_seconds", "registry_errors"):  # fmt: skip
            setattr(self, name, _Counter())


class _Req:
    method = "GET"


class _Resp:
    status_code = 200
    headers_sent = True

    def __init__(self, sent: int, length: int | None):
        self.sent = sent
        self.response_length = length


@pytest.fixture
def live(monkeypatch):
    fake = _Live()
    monkeypatch.setattr(metrics, "_live", fake)
    return fake


def _served(hooks, environ, resp, req=None):
    req = req or _Req()
    hooks["pre_request"](None, req)
    hooks["post_request"](None, req, environ, resp)


FILE = {"glance.route": "/v2/images/{image_id}/file", "SERVER_PORT": "9292", "PATH_INFO": "/v2/images/x/file"}


def test_download_bytes_written_and_sent_by_sendfile(live):
    hooks = metrics.request_hooks(9293, "/metrics")
    _served(hooks, FILE, _Resp(sent=1000, length=1000))
    # sendfile(2): gunicorn counts nothing sent; the whole length went when nothing failed.
    _served(hooks, FILE, _Resp(sent=0, length=5000))
    assert live.downloaded.values[()] == 6000
    assert live.requests.values[("/v2/images/{image_id}/file", "GET", "200")] == 2


def test_a_sendfile_cut_by_an_error_counts_no_bytes(live):
    hooks = metrics.request_hooks(9293, "/metrics")
    try:
        raise BrokenPipeError
    except BrokenPipeError:
        # gunicorn runs post_request in a finally clause while the error propagates
        _served(hooks, FILE, _Resp(sent=0, length=5000))
    assert () not in live.downloaded.values


def test_routes_fall_back_to_names_and_scrapes_are_not_counted(live):
    hooks = metrics.request_hooks(9293, "/metrics")
    _served(hooks, {"SERVER_PORT": "9292", "PATH_INFO": "/healthcheck"}, _Resp(0, 2))
    _served(hooks, {"SERVER_PORT": "9292", "PATH_INFO": "/v2/no/such/path/abc"}, _Resp(0, 2))
    _served(hooks, {"SERVER_PORT": "9293", "PATH_INFO": "/metrics"}, _Resp(0, 2))
    brew = _Req()
    brew.method = "BREW"  # a method of the client's own: no label value of its own
    _served(hooks, {"SERVER_PORT": "9292", "PATH_INFO": "/v2/images"}, _Resp(0, 2), brew)
    assert set(live.requests.values) == {
        ("/healthcheck", "GET", "200"),
        ("other", "GET", "200"),
        ("other", "other", "200"),
    }


def test_store_and_registry_failures_are_the_services_not_the_clients(live):
    from glance_service import exceptions

    for exc in (exceptions.BadRequest("x"), exceptions.NotFound("x"), OSError("disk"),
                exceptions.ServiceUnavailable("x"), exceptions.RegistryUnavailable("x")):  # fmt: skip
        with pytest.raises(type(exc)), metrics.store_operation("file", "add"):
            raise exc
    assert live.store_errors.values == {("file", "add"): 3}
    assert live.store_seconds.values == {("file", "add"): 5}


def test_the_endpoint_answers_only_on_its_own_socket():
    calls = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"api"]

    endpoint = metrics.MetricsEndpoint(app, 9293, "/metrics")
    statuses = []
    start = lambda status, headers: statuses.append(status)  # noqa: E731
    assert endpoint({"SERVER_PORT": "9292", "PATH_INFO": "/metrics", "REQUEST_METHOD": "GET"}, start) == [
        b"api"
    ]
    assert endpoint({"SERVER_PORT": "9293", "PATH_INFO": "/v2/images", "REQUEST_METHOD": "GET"}, start)
    assert calls == ["/metrics"]
    assert statuses == ["200 OK", "404 Not Found"]


def test_hooks_chain_with_the_arities_gunicorn_checks():
    seen = []
    chained = metrics._chain(
        {"pre_request": lambda worker, req: seen.append("first")},
        {"pre_request": lambda worker, req: seen.append("second"), "child_exit": lambda server, worker: None},
    )
    import inspect

    assert len(inspect.signature(chained["pre_request"]).parameters) == 2
    chained["pre_request"](None, None)
    assert seen == ["first", "second"]


def test_the_metrics_socket_cannot_be_the_api_socket():
    conf = cfg.ConfigOpts()
    metrics.register_opts(conf)
    conf([])
    conf.set_override("enable_prometheus", True, group="metrics")
    conf.set_override("port", 9292, group="metrics")
    # refused before anything is prepared (directory, environment, imports)
    with pytest.raises(ValueError, match="API's own address"):
        metrics.gunicorn_options(conf, "glance-api", {"bind": ["127.0.0.1:9292"]})
