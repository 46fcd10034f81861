"""Version discovery, health check, request ids, routing errors, error bodies."""

import requests


def test_root_is_300_without_auth(glance):
    resp = requests.get(glance.api_url + "/")
    assert resp.status_code == 300
    versions = {v["id"]: v["status"] for v in resp.json()["versions"]}
    assert versions["v2.17"] == "CURRENT" and versions["v2.15"] == "SUPPORTED"
    assert "v2.12" not in versions and "v2.18" not in versions
    assert resp.json()["versions"][0]["links"][0]["href"] == glance.api_url + "/v2/"


def test_versions_is_200(glance):
    assert requests.get(glance.api_url + "/versions").status_code == 200


def test_unknown_version_prefix_is_300(glance):
    assert requests.get(glance.api_url + "/v1/images").status_code == 300
    assert requests.get(glance.api_url + "/v3/images").status_code == 300


def test_minor_version_prefixes_reach_v2(http):
    for prefix in ("/v2", "/v2.0", "/v2.9", "/v2.17"):
        assert http.get(prefix + "/images").status_code == 200, prefix


def test_healthcheck(glance):
    resp = requests.get(glance.api_url + "/healthcheck")
    assert resp.status_code == 200 and resp.text == "OK"
    assert resp.headers["x-openstack-request-id"].startswith("req-")


def test_client_request_id_is_the_global_id_not_the_request_id(http):
    # oslo.middleware's RequestId (as Nova, Cinder, Neutron): a fresh id for each request; the
    # caller's own id is logged beside it as the global id (tests/functional/test_request_logging.py).
    sent = "req-0c5a3bb4-5d7e-4a7e-9a37-8c2b1f6f0e11"
    resp = http.get("/v2/images", headers={"X-Openstack-Request-Id": sent})
    assert resp.headers["x-openstack-request-id"].startswith("req-")
    assert resp.headers["x-openstack-request-id"] != sent


def test_unknown_route_404(http):
    assert http.get("/v2/whatever").status_code == 404
    assert http.get("/v2/images/").status_code == 404
    assert http.delete("/v2/images/").status_code == 404


def test_405_with_allow(http):
    resp = http.put("/v2/images")
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, POST"
    resp = http.post("/v2/images/x")
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, PATCH, DELETE"


def test_json_error_body(http):
    resp = http.get("/v2/images/" + "0" * 36, headers={"Accept": "application/json"})
    assert resp.status_code == 404
    body = resp.json()
    assert body["code"] == "404 Not Found" and body["title"] == "Not Found" and "message" in body


def test_schemas(http):
    image = http.get("/v2/schemas/image")
    assert image.status_code == 200 and image.json()["name"] == "image"
    assert image.json()["additionalProperties"] == {"type": "string"}
    assert image.json()["properties"]["os_distro"]["is_base"] is False
    assert http.get("/v2/schemas/images").json()["name"] == "images"
    assert http.get("/v2/schemas/member").json()["name"] == "member"
    assert http.get("/v2/schemas/members").json()["name"] == "members"
    assert (
        http.get("/v2/schemas/image", data=b"{}", headers={"Content-Type": "application/json"}).status_code
        == 400
    )


def test_info(http):
    assert http.get("/v2/info/import").json()["import-methods"]["type"] == "array"
    assert http.get("/v2/info/stores").status_code == 404
    assert http.get("/v2/info/usage").json() == {"usage": {}}
