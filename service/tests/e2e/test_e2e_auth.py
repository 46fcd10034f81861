"""keystonemiddleware in front of the API: what needs a token, what does not, and the token cache."""

from __future__ import annotations

import hashlib
import re
import time
import uuid

import requests


def test_no_token_is_401(glance):
    resp = requests.get(f"{glance.url}/v2/images", timeout=30)
    assert resp.status_code == 401, resp.text
    # keystonemiddleware tells the client where to authenticate.
    assert glance.keystone.url in resp.headers.get("WWW-Authenticate", ""), resp.headers


def test_invalid_token_is_401(glance):
    resp = requests.get(f"{glance.url}/v2/images", headers={"X-Auth-Token": "not-a-token"}, timeout=30)
    assert resp.status_code == 401, resp.text


def test_revoked_token_is_401(glance):
    """Glance asks Keystone about a token it has not cached: a revoked one is refused."""
    ks = glance.keystone
    token = ks.token("beta-reader", fresh=True)
    admin = ks.session("admin")
    resp = admin.delete(f"{ks.auth_url}/auth/tokens", headers={"X-Subject-Token": token}, raise_exc=False)
    assert resp.status_code == 204
    refused = requests.get(f"{glance.url}/v2/images", headers={"X-Auth-Token": token}, timeout=30)
    assert refused.status_code == 401, refused.text


def test_versions_and_healthcheck_need_no_token(glance):
    root = requests.get(f"{glance.url}/", timeout=30)
    assert root.status_code == 300
    versions = root.json()["versions"]
    assert any(v["status"] == "CURRENT" for v in versions)
    assert all(v["links"][0]["href"].endswith("/v2/") for v in versions)

    explicit = requests.get(f"{glance.url}/versions", timeout=30)
    assert explicit.status_code == 200
    assert explicit.json()["versions"]

    health = requests.get(f"{glance.url}/healthcheck", timeout=30)
    assert health.status_code == 200


def test_valid_token_and_request_id(glance):
    token = glance.keystone.token("alpha-reader")
    resp = requests.get(f"{glance.url}/v2/images", headers={"X-Auth-Token": token}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert "images" in resp.json()
    assert resp.headers.get("x-openstack-request-id", "").startswith("req-")


def _access_lines(path, needle: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [
            line
            for line in path.read_text().splitlines()
            if " glance_service.access " in line and needle in line
        ]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_request_ids_and_caller_in_the_access_lines_of_both_services(glance):
    # Keystone mode: a validated token (then the same token from the local cache) puts the
    # caller on the API's access line; the caller's global id reaches the registry's lines.
    token = glance.keystone.token("alpha-reader")
    logs = glance.procs.workdir / "log"
    for _ in range(2):
        global_id = f"req-{uuid.uuid4()}"
        resp = requests.get(
            f"{glance.url}/v2/images",
            headers={"X-Auth-Token": token, "X-Openstack-Request-Id": global_id},
            timeout=30,
        )
        assert resp.status_code == 200
        request_id = resp.headers["x-openstack-request-id"]
        (line,) = _access_lines(logs / "glance-api.log", f"[{global_id} {request_id} ")
        assert re.search(rf"\[{global_id} {request_id} [0-9a-f]{{32}} [0-9a-f]{{32}} ", line), line
        assert '"GET /v2/images HTTP/1.1" status: 200' in line
        registry = _access_lines(logs / "glance-registry.log", f"[{global_id} req-")
        assert registry and all(re.search(r"req-\S+ [0-9a-f]{32} [0-9a-f]{32} ", r) for r in registry), (
            registry
        )


def test_token_validation_is_cached_in_memcached(glance, memcached):
    token = glance.keystone.token("alpha-member", fresh=True)
    key = "tokens/" + hashlib.sha256(token.encode()).hexdigest()
    assert not memcached.command(f"get {key}").startswith("VALUE")

    before = memcached.stats()
    for _ in range(3):
        resp = requests.get(f"{glance.url}/v2/images", headers={"X-Auth-Token": token}, timeout=30)
        assert resp.status_code == 200, resp.text
    # The set may trail the response by a moment (the middleware caches after validating).
    deadline = time.monotonic() + 5
    while not memcached.command(f"get {key}").startswith("VALUE") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert memcached.command(f"get {key}").startswith("VALUE"), "auth_token did not cache the validated token"
    after = memcached.stats()
    assert int(after["cmd_set"]) > int(before["cmd_set"])
    assert int(after["get_hits"]) > int(before["get_hits"])
