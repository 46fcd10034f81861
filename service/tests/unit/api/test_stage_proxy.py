"""The staged-data hand-off between API nodes (``api/stage_proxy.py``), as upstream Glance's
``is_proxyable`` / ``_proxy_request_to_host``: which requests go to which node, the URL and
headers they go with, how the other node's answers come back, and what happens when it
cannot be reached. The two-process test is ``tests/functional/test_import_two_nodes.py``."""

from __future__ import annotations

import types

import pytest
import requests
import webob
from oslo_config import cfg

from glance_service import exceptions
from glance_service.api import errors, image_views, stage_proxy, versions
from glance_service.api import images as images_api
from glance_service.api import imports as imports_api
from glance_service.common import process
from glance_service.context import RequestContext
from glance_service.images import import_recovery, import_tasks, patch

A = "http://198.51.100.91:9292"
B = "http://198.51.100.92:9292"


def _conf(worker_self_reference_url=None, public_endpoint=None) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    stage_proxy.register_opts(conf)
    versions.register_opts(conf)
    conf([], project="stage-proxy-test")
    conf.set_override("worker_self_reference_url", worker_self_reference_url)
    conf.set_override("public_endpoint", public_endpoint)
    return conf


def _image(stage_host=None, status="uploading", **props) -> dict:
    if stage_host is not None:
        props[import_tasks.STAGE_HOST] = stage_host
    return {"id": "1" * 32, "status": status, "properties": props}


# -- which node ---------------------------------------------------------------------------------
def test_option_is_upstreams_name_and_unset_by_default():
    assert _conf().worker_self_reference_url is None


@pytest.mark.parametrize(
    ("own", "public", "recorded", "expected"),
    [
        (B, None, A, A),  # staged elsewhere: hand it over
        (A, None, A, None),  # staged here
        (A + "/", None, A, None),  # the same URL with a trailing slash
        (None, None, A, A),  # this node has no URL of its own: still hands it over (upstream)
        (None, A, A, None),  # public_endpoint stands in for an unset worker URL
        (None, "http://vip:9292", "http://vip:9292", None),  # same public_endpoint everywhere
        (B, None, None, None),  # nothing recorded (the stager had no URL): old behaviour
        (B, None, "", None),  # cleared when the import started
        (B, None, "myhost:1234:5678", None),  # a process marker of an older release
    ],
)
def test_stage_host_decision(own, public, recorded, expected):
    conf = _conf(own, public)
    assert stage_proxy.stage_host(conf, _image(recorded), {}) == expected


def test_a_handed_off_request_is_never_handed_on():
    conf = _conf(B)
    assert stage_proxy.stage_host(conf, _image(A), {stage_proxy.PROXIED_HEADER: "1"}) is None


def test_what_the_stager_records():
    assert import_tasks.self_url(_conf(A, "http://vip:9292")) == A
    assert import_tasks.self_url(_conf(None, "http://vip:9292")) == "http://vip:9292"
    assert import_tasks.self_url(_conf()) is None


def test_process_marker_moved_but_old_one_still_read():
    assert import_tasks.worker_marker({import_tasks.WORKER: "h:1:2"}) == "h:1:2"
    assert import_tasks.worker_marker({import_tasks.STAGE_HOST: "h:1:2"}) == "h:1:2"  # older release
    assert import_tasks.worker_marker({import_tasks.STAGE_HOST: A}) is None
    assert import_tasks.worker_marker({import_tasks.WORKER: "h:1:2", import_tasks.STAGE_HOST: A}) == "h:1:2"


def test_both_markers_are_hidden_and_reserved():
    for name in (import_tasks.STAGE_HOST, import_tasks.WORKER):
        assert name in image_views.HIDDEN_PROPERTIES
        with pytest.raises(exceptions.ReservedProperty):
            patch.check_attribute_access(name)


# -- URL and headers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "url"),
    [
        (A, A + "/v2/images/x/import"),
        (A + "/", A + "/v2/images/x/import"),
        ("https://a.example/image", "https://a.example/image/v2/images/x/import"),
    ],
)
def test_target_url(host, url):
    assert stage_proxy.target_url(host, "/v2/images/x/import") == url


def test_headers_carry_the_token_and_what_the_import_reads():
    ctx = RequestContext(auth_token="tok", user_id="u", project_id="p", roles=["member"])
    ctx.global_request_id = "req-11111111-1111-1111-1111-111111111111"
    sent = stage_proxy.forward_headers(
        ctx, {"X-Image-Meta-Store": "fast", "X-Other": "no", "Content-Length": "9"}
    )
    assert sent["X-Auth-Token"] == "tok"
    assert sent["X-Image-Meta-Store"] == "fast"
    assert sent["X-Openstack-Request-Id"] == ctx.global_request_id
    assert sent[stage_proxy.PROXIED_HEADER] == "1"
    assert "X-Other" not in sent and "Content-Length" not in sent


def test_headers_in_trusted_headers_mode_carry_the_identity():
    ctx = RequestContext(user_id="u", project_id="p", roles=["reader", "member"])
    sent = stage_proxy.forward_headers(ctx, {})
    assert "X-Auth-Token" not in sent
    assert (sent["X-User-Id"], sent["X-Project-Id"], sent["X-Roles"]) == ("u", "p", "reader,member")


# -- the call and its answers --------------------------------------------------------------------
class Session:
    def __init__(self, answer=None, raises=None):
        self.answer, self.raises = answer, raises
        self.calls = []

    def request(self, method, url, **kw):
        self.calls.append((method, url, kw))
        if self.raises is not None:
            raise self.raises
        return self.answer


def _answer(status, body=b"", request_id="req-remote", reason="X") -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp.reason = reason
    resp._content = body
    if request_id:
        resp.headers["x-openstack-request-id"] = request_id
    return resp


def _req(method="POST", path="/v2/images/abc/import", **headers) -> webob.Request:
    req = webob.Request.blank(path, method=method, headers=headers)
    return req


def test_forward_replays_method_path_and_body():
    session = Session(_answer(202))
    ctx = RequestContext(auth_token="tok")
    out = stage_proxy.forward(_req(), ctx, A, {"method": {"name": "glance-direct"}}, session=session)
    assert (out.status, out.request_id) == (202, "req-remote")
    method, url, kw = session.calls[0]
    assert (method, url) == ("POST", A + "/v2/images/abc/import")
    assert kw["json"] == {"method": {"name": "glance-direct"}}
    assert kw["timeout"] == stage_proxy.TIMEOUT == 60
    assert kw["headers"]["X-Auth-Token"] == "tok"


def test_forward_error_answers_keep_status_message_and_request_id():
    # as this service (and Glance, through WebOb) writes an error in JSON
    body = b'{"message": "Image abc has an import in progress.<br /><br />\\n\\n\\n", "code": "409 Conflict"}'
    session = Session(_answer(409, body))
    with pytest.raises(exceptions.ProxiedError) as caught:
        stage_proxy.forward(_req(), RequestContext(), A, {}, session=session)
    exc = caught.value
    assert exc.code == 409 and exc.message == "Image abc has an import in progress."
    resp = errors.to_response(_req(Accept="application/json"), exc)
    assert resp.status_int == 409
    assert resp.headers["x-openstack-request-id"] == "req-remote"
    assert resp.json["message"].startswith("Image abc has an import in progress.<br />")
    assert resp.json["message"].count("import in progress") == 1


def test_forward_error_without_json_uses_the_reason():
    session = Session(_answer(500, b"<html>oops</html>", reason="Internal Server Error"))
    with pytest.raises(exceptions.ProxiedError) as caught:
        stage_proxy.forward(_req(), RequestContext(), A, {}, session=session)
    assert (caught.value.code, caught.value.message) == (500, "Internal Server Error")


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (requests.exceptions.ConnectionError("refused"), 504),
        (requests.exceptions.ConnectTimeout("no answer"), 504),
        (requests.exceptions.ReadTimeout("slow"), 502),
        (requests.exceptions.InvalidURL("bad"), 502),
    ],
)
def test_forward_unreachable_is_upstreams_504_or_502(raised, code):
    with pytest.raises(exceptions.StageHostFailed) as caught:
        stage_proxy.forward(_req(), RequestContext(), A, {}, session=Session(raises=raised))
    assert caught.value.code == code
    assert caught.value.message == "Stage host is unavailable"


# -- what is handed off (the handlers, with the call replaced) -----------------------------------
class Data:
    def __init__(self, image):
        self.image = image
        self.calls = []

    def image_get(self, ctx, image_id, **kw):
        if self.image is None:
            raise exceptions.ImageNotFound(image_id)
        return self.image

    def __getattr__(self, name):
        def record(*args, **kw):
            self.calls.append(name)
            raise AssertionError(f"{name} called: the request should have been handed off")

        return record


def _svc(image, own=B):
    conf = types.SimpleNamespace(
        worker_self_reference_url=own,
        public_endpoint=None,
        enabled_import_methods=["glance-direct", "web-download", "copy-image"],
        delayed_delete=False,
    )
    policy = types.SimpleNamespace(enforce_image=lambda *a, **k: None)
    stores = types.SimpleNamespace(enabled={}, default_backend=None)
    return types.SimpleNamespace(conf=conf, data=Data(image), policy=policy, stores=stores)


@pytest.fixture
def forwarded(monkeypatch):
    calls = []

    def fake(req, ctx, host, body=None, **kw):
        calls.append((req.method, host, body))
        return stage_proxy.Proxied(202 if req.method == "POST" else 204, "req-remote")

    monkeypatch.setattr(stage_proxy, "forward", fake)
    return calls


def _import_req(body):
    import json

    return webob.Request.blank(
        "/v2/images/abc/import",
        method="POST",
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )


def test_glance_direct_import_of_data_staged_elsewhere_is_handed_off(forwarded):
    svc = _svc(_image(A, disk_format="raw"))
    svc.data.image["disk_format"] = svc.data.image["container_format"] = "raw"
    body = {"method": {"name": "glance-direct"}}
    resp = imports_api.import_image(_import_req(body), svc, RequestContext(), "abc")
    assert resp.status_int == 202 and resp.body == b""
    assert resp.headers["x-openstack-request-id"] == "req-remote"
    assert forwarded == [("POST", A, body)]


def test_import_checks_run_before_the_hand_off(forwarded):
    svc = _svc(_image(A, status="queued"))
    svc.data.image["disk_format"] = svc.data.image["container_format"] = "raw"
    with pytest.raises(exceptions.ImageStatusConflict):
        imports_api.import_image(
            _import_req({"method": {"name": "glance-direct"}}), svc, RequestContext(), "abc"
        )
    assert forwarded == []


def test_delete_of_an_image_staged_elsewhere_is_handed_off(forwarded):
    svc = _svc(_image(A))
    resp = images_api.delete(_req("DELETE", "/v2/images/abc"), svc, RequestContext(), "abc")
    assert resp.status_int == 204
    assert resp.headers["x-openstack-request-id"] == "req-remote"
    assert forwarded == [("DELETE", A, None)]


def test_delete_goes_on_here_when_the_stage_node_is_unreachable(monkeypatch):
    def down(*a, **k):
        raise exceptions.StageHostUnreachable()

    monkeypatch.setattr(stage_proxy, "forward", down)
    image = _image(A)
    svc = _svc(image)
    destroyed = []
    svc.data.image_destroy = lambda ctx, image_id: destroyed.append(image_id) or {**image, "locations": []}
    svc.stores.unstage = lambda image_id: None
    assert images_api.delete(_req("DELETE", "/v2/images/abc"), svc, RequestContext(), "abc").status_int == 204
    assert destroyed == ["abc"]


def test_delete_refused_by_the_stage_node_is_the_clients_answer(monkeypatch):
    def refuse(*a, **k):
        raise exceptions.ProxiedError(500, "boom", "req-remote")

    monkeypatch.setattr(stage_proxy, "forward", refuse)
    svc = _svc(_image(A))
    with pytest.raises(exceptions.ProxiedError):  # as upstream: only a failed call goes on here
        images_api.delete(_req("DELETE", "/v2/images/abc"), svc, RequestContext(), "abc")


# -- start-up recovery of stagings ----------------------------------------------------------------
class RecoveryData:
    def __init__(self, image):
        self.image = image
        self.updates = []

    def image_get_by_status(self, ctx, status):
        return [self.image] if self.image["status"] == status else []

    def image_update(self, ctx, image_id, values, **kw):
        self.updates.append(values)


def _recovery_svc(image, own):
    conf = types.SimpleNamespace(
        worker_self_reference_url=own, public_endpoint=None, import_stale_timeout=3600
    )
    stores = types.SimpleNamespace(staged_url=lambda image_id: None, unstage=lambda image_id: None)
    return types.SimpleNamespace(conf=conf, data=RecoveryData(image), stores=stores)


def test_start_up_recovery_leaves_data_staged_on_another_node_alone():
    # A dead process of this host staged it, but on node A: only A can tell (its own start-up).
    dead = process.host_marker().split(":")[0] + ":999999999:1"
    image = {**_image(A, **{import_tasks.WORKER: dead}), "updated_at": "2000-01-01T00:00:00"}
    svc = _recovery_svc(image, own=B)
    import_recovery._recover_stagings(svc, RequestContext.admin())
    assert svc.data.updates == []
    # On A itself, the same image with no staged data is returned to 'queued'.
    svc = _recovery_svc(image, own=A)
    import_recovery._recover_stagings(svc, RequestContext.admin())
    assert svc.data.updates and svc.data.updates[0]["status"] == "queued"
