"""common.request_log: request ids in log lines, the access log line, secrets masked."""

from __future__ import annotations

import datetime
import io
import logging
import types
import uuid

import pytest
from oslo_config import cfg
from oslo_context import context as oslo_context
from oslo_log import formatters

from glance_service.common import request_log
from glance_service.context import RequestContext, from_environ

S3 = "s3://AKIAEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCY@s3.example.com/bucket/key"
SWIFT = "swift+https://tenant%3Aglance:Sw1ftK3y@keystone.example.com/v3/container/obj"


@pytest.mark.parametrize(
    "text,secrets,kept",
    [
        (
            f"Image data at {S3} is not available",
            ["AKIAEXAMPLE", "wJalrXUtnFEMI", "bPxRfiCY"],
            "s3://***@s3.example.com/bucket/key",
        ),
        (f"'{SWIFT}'", ["glance", "Sw1ftK3y"], "swift+https://***@keystone.example.com/v3/container/obj"),
        ("swift://acct:user:key123@auth.example.com/c/o", ["key123"], "swift://***@auth.example.com/c/o"),
        (
            "GET https://s3.example.com/b/k?X-Amz-Credential=AKIAX%2F20260101&X-Amz-Signature=abcdef0123&x=1",
            ["AKIAX", "abcdef0123"],
            "X-Amz-Credential=***&X-Amz-Signature=***&x=1",
        ),
        (
            "/v1/AUTH_p/c/o?temp_url_sig=deadbeef&temp_url_expires=1",
            ["deadbeef"],
            "temp_url_sig=***&temp_url_expires=1",
        ),
        ('{"url": "https://user:pa55@host/img"}', ["pa55", "user"], '"https://***@host/img"'),
    ],
)
def test_mask_secrets(text, secrets, kept):
    masked = request_log.mask_secrets(text)
    for secret in secrets:
        assert secret not in masked
    assert kept in masked


@pytest.mark.parametrize(
    "text",
    [
        "GET /v2/images?limit=10&sort_key=name&marker=abc HTTP/1.1",
        "http://127.0.0.1:9292/v2/images/0d9f/file",
        "rbd://fsid/images/0d9f/snap",
        "plain text with an address a@b.c",
    ],
)
def test_mask_secrets_leaves_the_rest(text):
    assert request_log.mask_secrets(text) == text


def _oslo_conf() -> cfg.ConfigOpts:
    from oslo_log import log

    conf = cfg.ConfigOpts()
    log.register_options(conf)
    conf([], project="glance-request-log-test")
    return conf


def _handler(conf) -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatters.ContextFormatter(project="glance", version="1", config=conf))
    return handler, stream


def test_masking_formatter_covers_arguments_and_tracebacks():
    conf = _oslo_conf()
    handler, stream = _handler(conf)
    logger = logging.getLogger("test.request_log.masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        request_log.install_masking([logger])
        request_log.install_masking([logger])  # idempotent: wrapped once
        assert isinstance(handler.formatter, request_log.MaskingFormatter)
        assert not isinstance(handler.formatter.inner, request_log.MaskingFormatter)
        logger.warning("Image data at %s is not available", S3)
        try:
            raise ValueError(f"cannot open {SWIFT}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "s3://***@s3.example.com/bucket/key" in out and "ValueError: cannot open swift+https://***@" in out
    for secret in ("wJalrXUtnFEMI", "Sw1ftK3y", "AKIAEXAMPLE"):
        assert secret not in out


def _uuid_id() -> str:
    return "req-" + str(uuid.uuid4())


def test_log_lines_carry_global_and_local_request_ids_and_the_project():
    conf = _oslo_conf()
    handler, stream = _handler(conf)
    logger = logging.getLogger("test.request_log.ids")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False
    global_id, local_id = _uuid_id(), _uuid_id()
    environ = {
        "openstack.request_id": local_id,
        "openstack.global_request_id": global_id,
        "HTTP_X_PROJECT_ID": "proj1",
        "HTTP_X_USER_ID": "user1",
    }
    seen = []

    def inner(environ, start_response):
        ctx = from_environ(environ)
        environ["glance.context"] = ctx
        seen.append(ctx)
        return request_log.LogIdentity(lambda e, s: logger.info("inside") or [b""])(environ, start_response)

    try:
        request_log.LogContext(inner)(environ, lambda *a: None)
    finally:
        logger.removeHandler(handler)
    assert (seen[0].request_id, seen[0].global_request_id) == (local_id, global_id)
    assert f"[{global_id} {local_id} user1 proj1 " in stream.getvalue()


def test_log_context_without_identity_has_the_ids_only():
    local_id = _uuid_id()
    request_log.LogContext(lambda e, s: [b""])({"openstack.request_id": local_id}, lambda *a: None)
    current = oslo_context.get_current()
    assert current.request_id == local_id and current.global_request_id is None and current.project_id is None


def test_context_passes_the_global_id_on():
    ctx = RequestContext(request_id="req-local", global_request_id="req-global")
    assert ctx.to_headers()["X-Openstack-Request-Id"] == "req-global"
    assert RequestContext(request_id="req-local").to_headers()["X-Openstack-Request-Id"] == "req-local"


def test_client_header_is_not_the_request_id():
    ctx = from_environ({"HTTP_X_OPENSTACK_REQUEST_ID": "req-chosen-by-client"})
    assert ctx.request_id != "req-chosen-by-client" and ctx.global_request_id is None


class _Resp:
    def __init__(self, status_code: int, sent: int):
        self.status_code = status_code
        self.status = f"{status_code} X"
        self.sent = sent


def _req(method: str, path: str, query: str = ""):
    return types.SimpleNamespace(
        method=method, path=path, query=query, uri=path + ("?" + query if query else ""), version=(1, 1)
    )


def test_access_line(caplog):
    local_id, global_id = _uuid_id(), _uuid_id()
    environ = {
        "REMOTE_ADDR": "198.51.100.7",
        "openstack.request_id": local_id,
        "openstack.global_request_id": global_id,
        "glance.context": RequestContext(request_id=local_id, project_id="proj9", user_id="u9"),
    }
    line = request_log.access_line(
        _Resp(200, 1234),
        _req("GET", "/v2/images", "limit=1&token=t0psecret"),
        environ,
        datetime.timedelta(microseconds=12345),
    )
    message, ctx = line
    assert message == (
        '198.51.100.7 "GET /v2/images?limit=1&token=*** HTTP/1.1" status: 200 len: 1234 time: 0.0123450'
    )
    assert (ctx.request_id, ctx.global_request_id, ctx.project_id, ctx.user_id) == (
        local_id,
        global_id,
        "proj9",
        "u9",
    )


def test_access_line_without_context_or_ids():
    message, ctx = request_log.access_line(
        _Resp(400, 0), _req("POST", "/rpc"), {"REMOTE_ADDR": "127.0.0.1"}, datetime.timedelta(seconds=1)
    )
    assert message == '127.0.0.1 "POST /rpc HTTP/1.1" status: 400 len: 0 time: 1.0000000'
    assert ctx is None


def test_a_failed_tasks_message_has_no_credentials():
    # GET /v2/tasks/<id> shows the message: it is an error message like any other.
    from glance_service.images import import_tasks

    saved = []
    svc = types.SimpleNamespace(
        conf=types.SimpleNamespace(task=types.SimpleNamespace(task_time_to_live=48)),
        data=types.SimpleNamespace(task_update=lambda ctx, task_id, values: saved.append(values)),
    )
    import_tasks.finish_task(
        svc, RequestContext.admin(), "t1", False, "Downloading https://u:Pw5ecret@h/i failed"
    )
    assert saved[0]["message"] == "Downloading https://***@h/i failed"


# -- the registry's request ids: oslo.middleware's RequestId without webob ------------------------


def _serve(middleware_factory, environ: dict, app_headers: list, ids: list[str], monkeypatch):
    """What ``middleware_factory(app)`` does with ``environ``: the environ the app saw, the
    status and headers sent, the body (the request id generator gives ``ids`` in turn)."""
    ids = list(ids)
    monkeypatch.setattr(oslo_context, "generate_request_id", lambda: ids.pop(0))
    seen = {}

    def app(env, start_response):
        seen.update(env)
        start_response("201 Created", list(app_headers))
        return [b'{"result": 1}']

    sent = []
    body = middleware_factory(app)(
        {"REQUEST_METHOD": "POST", "PATH_INFO": "/rpc", "SERVER_NAME": "h", "SERVER_PORT": "9191",
         "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), **environ},
        lambda status, headers, exc_info=None: sent.append((status, headers)),
    )  # fmt: skip
    keys = ("openstack.request_id", "openstack.global_request_id")
    return {k: seen.get(k) for k in keys}, sent, b"".join(body)


@pytest.mark.parametrize(
    ("environ", "app_headers"),
    [
        ({}, [("Content-Type", "application/json")]),
        ({"HTTP_X_OPENSTACK_REQUEST_ID": "req-0f3e6a0c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"}, []),
        ({"HTTP_X_OPENSTACK_REQUEST_ID": "req-0F3E6A0C-1B2D-4E5F-8A9B-0C1D2E3F4A5B"}, []),
        ({"HTTP_X_OPENSTACK_REQUEST_ID": "not-a-request-id"}, []),
        ({"HTTP_X_OPENSTACK_REQUEST_ID": "req-0f3e6a0c-1b2d-4e5f-8a9b-0c1d2e3f4a5b-x"}, []),
        ({}, [("X-OpenStack-Request-Id", "req-set-by-the-app")]),
    ],
)
def test_registry_request_ids_are_oslo_middlewares(environ, app_headers, monkeypatch):
    from oslo_middleware import request_id

    ids = ["req-00000000-0000-4000-8000-000000000001"]
    ours = _serve(request_log.RequestIds, environ, app_headers, ids, monkeypatch)
    oslos = _serve(request_id.RequestId, environ, app_headers, ids, monkeypatch)
    assert ours == oslos
    env, sent, body = ours
    assert env["openstack.request_id"] == ids[0] and body == b'{"result": 1}'
    headers = [(k.lower(), v) for k, v in sent[0][1]]
    assert sum(k == "x-openstack-request-id" for k, _ in headers) == 1


def test_the_registry_uses_the_request_ids_without_webob(monkeypatch):
    from glance_service.registry import server

    built = []
    monkeypatch.setattr(request_log, "with_request_ids", lambda app: built.append("oslo") or app)
    real = request_log.with_plain_request_ids
    monkeypatch.setattr(request_log, "with_plain_request_ids", lambda app: built.append("plain") or real(app))
    conf = cfg.ConfigOpts()
    conf([])
    server.identity.register_opts(conf)
    conf.set_override("registry_identity_secret", "s3cret")

    class NoData:
        pass

    monkeypatch.setattr(server, "_healthcheck", lambda app, conf, data_api: app)
    app = server.build_app(conf, data_api=NoData())
    assert built == ["plain"] and isinstance(app, request_log.RequestIds)
