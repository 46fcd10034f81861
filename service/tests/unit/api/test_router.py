import re
import uuid

import pytest
import webob
from oslo_config import cfg

from glance_service import exceptions
from glance_service.api import app as app_mod
from glance_service.api import wiring
from glance_service.api.router import Route, Router
from glance_service.api.routes import routes
from glance_service.common import config
from glance_service.images import image_schema as schema_mod
from glance_service.images import policy as policy_mod


class NoImages:
    """A data API that has no images (the router tests never reach real data)."""

    def __getattr__(self, name):
        def call(ctx, *args, **kwargs):
            if name == "image_get_all":
                return []
            raise exceptions.ImageNotFound("No image found")

        return call


@pytest.fixture(scope="module")
def app():
    conf = cfg.ConfigOpts()
    conf.register_opts(config.paste_deploy_opts, group="paste_deploy")
    app_mod.register_opts(conf)
    conf([], project="glance-router-test")
    conf.set_override("flavor", "", group="paste_deploy")
    svc = wiring.Services(
        conf=conf,
        data=NoImages(),
        stores=None,
        policy=policy_mod.Enforcer(conf),
        schema=schema_mod.ImageSchema.from_conf(conf),
    )
    return app_mod.app_factory(conf, svc)


def call(app, method, path, body=None, headers=None):
    h = {"X-Project-Id": "p", "X-Roles": "reader,member", "Accept": "application/json"}
    h.update(headers or {})
    req = webob.Request.blank(path, method=method, headers=h)
    if body is not None:
        req.body = body
    return req.get_response(app)


@pytest.mark.parametrize(
    "path",
    [
        "/v2/nothing",
        "/v2/images/",
        "/v2/images/x/y",
        "/v2",
        "/v2/",
        "/v2/schemas/bogus",
        "/v2/images//tags/a",
    ],
)
def test_unknown_paths_are_404(app, path):
    resp = call(app, "GET", path)
    assert resp.status_int == 404
    assert resp.json["code"] == "404 Not Found"


@pytest.mark.parametrize(
    "method,path,allow",
    [
        ("PUT", "/v2/images", "GET, POST"),
        ("DELETE", "/v2/images", "GET, POST"),
        ("POST", "/v2/images/x", "GET, PATCH, DELETE"),
        ("PUT", "/v2/images/x", "GET, PATCH, DELETE"),
        ("POST", "/v2/images/x/file", "GET, PUT"),
        ("GET", "/v2/images/x/tags/t", "PUT, DELETE"),
        ("GET", "/v2/images/x/actions/deactivate", "POST"),
        ("DELETE", "/v2/schemas/image", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(app, method, path, allow):
    resp = call(app, method, path)
    assert resp.status_int == 405
    assert resp.headers["Allow"] == allow


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/v2/images/x"),
        ("DELETE", "/v2/images/x"),
        ("PUT", "/v2/images/x/tags/t"),
        ("GET", "/v2/schemas/image"),
    ],
)
def test_body_on_body_reject_routes_is_400(app, method, path):
    resp = call(app, method, path, body=b"{}", headers={"Content-Type": "application/json"})
    assert resp.status_int == 400
    assert "body is not expected" in resp.json["message"]


def test_every_response_has_a_request_id(app):
    for path in ("/", "/versions", "/healthcheck", "/v2/images", "/v2/nothing"):
        assert call(app, "GET", path).headers["x-openstack-request-id"].startswith("req-")


REQ_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.mark.parametrize("sent", ["abc", "req-abc", "req-" + str(uuid.uuid4()), "x" * 500])
def test_request_id_is_always_a_new_one(app, sent):
    # oslo.middleware's RequestId: the caller's id is its global id, never this request's id.
    resp = call(app, "GET", "/v2/images", headers={"X-Openstack-Request-Id": sent})
    assert REQ_ID.match(resp.headers["x-openstack-request-id"])
    assert resp.headers["x-openstack-request-id"] != sent
    assert resp.headers.getall("x-openstack-request-id") == [resp.headers["x-openstack-request-id"]]


def test_versions(app):
    root = call(app, "GET", "/")
    assert root.status_int == 300
    ids = [(v["id"], v["status"]) for v in root.json["versions"]]
    assert ids[:3] == [("v2.15", "SUPPORTED"), ("v2.9", "SUPPORTED"), ("v2.17", "CURRENT")]
    assert ids[-1] == ("v2.0", "SUPPORTED") and len(ids) == 11
    assert root.json["versions"][0]["links"] == [{"rel": "self", "href": "http://localhost/v2/"}]
    assert call(app, "GET", "/versions").status_int == 200
    for path in ("/v1/images", "/v3/images", "/v2.8/images", "/v2.12/images", "/foo"):
        assert call(app, "GET", path).status_int == 300, path
    for path in ("/v2/images", "/v2.0/images", "/v2.17/images", "/v2.9/images"):
        assert call(app, "GET", path).status_int == 200, path


def test_media_type_versioning(app):
    accept = {"Accept": "application/vnd.openstack.images-v2.1"}
    assert call(app, "GET", "/images", headers=accept).status_int == 200
    assert (
        call(app, "GET", "/images", headers={"Accept": "application/vnd.openstack.images-v9"}).status_int
        == 300
    )


def test_error_bodies_are_negotiated(app):
    assert call(app, "GET", "/v2/nothing").content_type == "application/json"
    html = call(app, "GET", "/v2/nothing", headers={"Accept": "*/*"})
    assert html.content_type == "text/html"
    plain = call(app, "GET", "/v2/nothing", headers={"Accept": "text/plain"})
    assert plain.content_type == "text/plain"


def test_unexpected_errors_are_opaque_500():
    def boom(req, svc, ctx):
        raise RuntimeError("secret detail")

    router = Router([Route("/v2/boom", {"GET": boom}, "GET")], services=None)
    req = webob.Request.blank("/v2/boom", headers={"Accept": "application/json"})
    req.environ["glance.context"] = type("C", (), {"read_only": False})()
    resp = req.get_response(router)
    assert resp.status_int == 500
    assert b"secret" not in resp.body


def test_route_table_templates_are_unique():
    templates = [r.template for r in routes()]
    assert len(templates) == len(set(templates))


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/nothing"), ("OPTIONS", "/v2/images"), ("GET", "/v2/images/x"), ("PATCH", "/v2/images/x")],
)
def test_refused_requests_have_their_body_read(app, method, path):
    """So that the server does not close with the body unread (a reset the client sees
    instead of the 4xx): the router reads what the handler left."""
    import io

    stream = io.BytesIO(b"x" * (3 * 1024 * 1024))
    req = webob.Request.blank(path, method=method, headers={"X-Project-Id": "p", "X-Roles": "reader,member"})
    req.environ["wsgi.input"] = stream
    req.environ["CONTENT_LENGTH"] = str(len(stream.getvalue()))
    resp = req.get_response(app)
    assert 400 <= resp.status_int < 500
    assert stream.tell() == len(stream.getvalue())
