"""Request ids, access lines, masked credentials and links behind a proxy, read from what the real
glance-api and glance-registry processes write to their log files and answer."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.fixtures.glance_procs import GlanceProcs, start_glance
from tests.functional.conftest import Http

ACCESS = "glance_service.access"
TIME = re.compile(r" time: \d+\.\d{7}$")
# Credentials of a location (an S3 secret key may contain "/" and "+").
ACCESS_KEY = "AKIAEXAMPLE7Q"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzz"
S3_URL = f"s3://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:1/bucket/object"
FTP_PASSWORD = "Ftp5ecretPw"
HTTP_PASSWORD = "Http5ecretPw"
HTTP_URL = f"http://glance:{HTTP_PASSWORD}@127.0.0.1:1/image.raw"  # nothing listens on port 1
SECRETS = (SECRET_KEY, "wJalrXUtnFEMI", ACCESS_KEY, FTP_PASSWORD, HTTP_PASSWORD)


@pytest.fixture(scope="module")
def procs(tmp_path_factory):
    procs = start_glance(
        tmp_path_factory.mktemp("glance-request-logging"),
        extra_api={
            "DEFAULT": {"show_multiple_locations": "true"},
            "oslo_middleware": {"enable_proxy_headers_parsing": "true"},
        },
        workers=1,
    )
    yield procs
    procs.stop()


@pytest.fixture
def member(procs) -> Http:
    return Http(procs.api_url)


def log_path(procs: GlanceProcs, name: str) -> Path:
    return procs.workdir / "log" / f"{name}.log"


def access_lines(
    procs: GlanceProcs, name: str, needle: str, count: int = 1, timeout: float = 10.0
) -> list[str]:
    """The access lines of ``name``'s log that contain ``needle``, once there are ``count``
    (the line is written after the response has gone out, so it may lag behind it)."""
    deadline = time.monotonic() + timeout
    while True:
        text = log_path(procs, name).read_text(errors="replace")
        lines = [line for line in text.splitlines() if f" {ACCESS} " in line and needle in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def new_req_id() -> str:
    return "req-" + str(uuid.uuid4())


def test_one_access_line_per_request(procs, member):
    image = member.create_image(disk_format="raw", container_format="bare")
    image_id = image["id"]
    data = b"x" * 1000
    calls = [
        ("POST", "/v2/images", lambda: member.post("/v2/images", json={"name": "second"}), 201),
        ("GET", "/v2/images?limit=1", lambda: member.get("/v2/images?limit=1"), 200),
        ("GET", f"/v2/images/{uuid.uuid4()}", None, 404),
        (
            "PUT",
            f"/v2/images/{image_id}/file",
            lambda: member.put(
                f"/v2/images/{image_id}/file", data=data, headers={"Content-Type": "application/octet-stream"}
            ),
            204,
        ),
        ("GET", f"/v2/images/{image_id}/file", lambda: member.get(f"/v2/images/{image_id}/file"), 200),
        ("GET", "/versions", lambda: requests.get(procs.api_url + "/versions", timeout=10), 200),
    ]
    for method, path, call, status in calls:
        resp = call() if call else member.get(path)
        assert resp.status_code == status, (method, path, resp.text)
        request_id = resp.headers["x-openstack-request-id"]
        lines = access_lines(procs, "glance-api", f" {request_id} ")
        assert len(lines) == 1, (method, path, lines)
        line = lines[0]
        assert f'127.0.0.1 "{method} {path} HTTP/1.1" status: {status} len: {len(resp.content)} ' in line, (
            line
        )
        assert TIME.search(line), line
        if path != "/versions":  # authenticated: the caller is on the line
            assert f"[None {request_id} {member.user} {member.project} " in line, line
        else:
            assert f"[None {request_id} - - " in line, line
    # The registry logs its calls the same way, one line each.
    assert access_lines(procs, "glance-registry", '"POST /rpc HTTP/1.1" status: 200 len: ')


def test_global_request_id_follows_the_request_to_the_registry(procs, member):
    global_id = new_req_id()
    resp = member.get("/v2/images", headers={"X-Openstack-Request-Id": global_id})
    assert resp.status_code == 200
    request_id = resp.headers["x-openstack-request-id"]
    assert request_id != global_id and request_id.startswith("req-")
    (line,) = access_lines(procs, "glance-api", f"[{global_id} {request_id} ")
    assert '"GET /v2/images HTTP/1.1" status: 200' in line
    # The registry's own request id for the call, next to the same global id.
    registry = access_lines(procs, "glance-registry", f"[{global_id} req-")
    assert registry and all('"POST /rpc HTTP/1.1" status: 200' in r for r in registry)
    assert all(f" {request_id} " not in r for r in registry)


def test_an_invalid_client_request_id_is_ignored(procs, member):
    resp = member.get("/v2/images", headers={"X-Openstack-Request-Id": "req-chosen-by-the-client"})
    request_id = resp.headers["x-openstack-request-id"]
    assert re.fullmatch(r"req-[0-9a-f-]{36}", request_id)
    (line,) = access_lines(procs, "glance-api", f"[None {request_id} ")
    assert "req-chosen-by-the-client" not in log_path(procs, "glance-api").read_text()


def add_location(h: Http, image_id: str, url: str) -> requests.Response:
    return h.patch(
        f"/v2/images/{image_id}",
        [{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}],
    )


def test_location_credentials_never_in_logs_or_error_bodies(procs, member):
    s3_image = member.create_image(disk_format="raw", container_format="bare")["id"]
    http_image = member.create_image(disk_format="raw", container_format="bare")["id"]
    assert add_location(member, s3_image, S3_URL).status_code == 200
    assert add_location(member, http_image, HTTP_URL).status_code == 200
    errors = [
        add_location(member, s3_image, S3_URL),  # already present: the message quotes the URL
        add_location(member, s3_image, f"ftp://glance:{FTP_PASSWORD}@198.51.100.9/x.img"),  # bad scheme
        member.get(f"/v2/images/{s3_image}/file"),  # no s3 store here
        member.get(f"/v2/images/{http_image}/file"),  # the http store cannot connect
        member.get(f"/v2/images/{http_image}/file?X-Amz-Signature=Sig5ecret&token=Tok5ecret"),
    ]
    for resp in errors:
        assert resp.status_code >= 400, resp.text
        for secret in SECRETS:
            assert secret not in resp.text, resp.text
    assert "s3://***@127.0.0.1:1/bucket/object" in errors[0].text
    assert "ftp://***@198.51.100.9/x.img" in errors[1].text
    for resp in errors:
        access_lines(procs, "glance-api", resp.headers["x-openstack-request-id"])
    api_log = log_path(procs, "glance-api").read_text()
    # The failed read names the location, without its credentials.
    assert "Image data at http://***@127.0.0.1:1/image.raw is not available" in api_log
    assert "X-Amz-Signature=***&token=***" in api_log
    logs = [*(procs.workdir / "log").iterdir(), *procs.workdir.glob("*.out")]
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in (*SECRETS, "Sig5ecret", "Tok5ecret"):
            assert secret not in text, (path.name, secret)


def _links(value, found: list[str]) -> list[str]:
    """Every string in a JSON document that names a URL or an API path."""
    if isinstance(value, dict):
        for item in value.values():
            _links(item, found)
    elif isinstance(value, list):
        for item in value:
            _links(item, found)
    elif isinstance(value, str) and (value.startswith(("/v2", "http:", "https:"))):
        found.append(value)
    return found


HTTPS = {"X-Forwarded-Proto": "https"}


def test_behind_an_https_proxy_every_link_is_https(procs, member):
    # Absolute links (versions document, Location) take the proxy's scheme; the others are paths
    # (as in Glance) that the client resolves against its https endpoint.
    https_base = procs.api_url.replace("http://", "https://")
    for path, status in (("/", 300), ("/versions", 200)):
        resp = requests.get(procs.api_url + path, headers=HTTPS, timeout=10)
        assert resp.status_code == status
        hrefs = [link["href"] for v in resp.json()["versions"] for link in v["links"]]
        assert hrefs and all(h == https_base + "/v2/" for h in hrefs), hrefs
    resp = requests.get(
        procs.api_url + "/versions", headers={**HTTPS, "X-Forwarded-Host": "images.example.com"}, timeout=10
    )
    assert resp.json()["versions"][0]["links"][0]["href"] == "https://images.example.com/v2/"

    created = member.post("/v2/images", json={"name": "a"}, headers=HTTPS)
    assert created.status_code == 201
    assert created.headers["Location"] == f"{https_base}/v2/images/{created.json()['id']}"
    member.create_image(name="b")
    followed = []
    for path in (
        "/v2/images?limit=1",
        f"/v2/images/{created.json()['id']}",
        "/v2/schemas/images",
        "/v2/schemas/image",
    ):
        resp = member.get(path, headers=HTTPS)
        assert resp.status_code == 200, path
        followed += _links(resp.json(), [])
    listing = member.get("/v2/images?limit=1", headers=HTTPS).json()
    assert listing["next"].startswith("/v2/images?") and listing["first"].startswith("/v2/images")
    assert followed and all(link.startswith(("/v2", "https://")) for link in followed), followed


def test_proxy_headers_are_ignored_when_parsing_is_off(glance, http):
    # The default (no load balancer): a client's X-Forwarded-Proto changes nothing, in gunicorn
    # or in oslo.middleware.
    resp = requests.get(glance.api_url + "/versions", headers=HTTPS, timeout=10)
    assert resp.json()["versions"][0]["links"][0]["href"] == glance.api_url + "/v2/"
    created = http.post("/v2/images", json={"name": "a"}, headers=HTTPS)
    assert created.headers["Location"].startswith(glance.api_url + "/v2/images/")
