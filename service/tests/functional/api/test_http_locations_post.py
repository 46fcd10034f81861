"""Location import (``POST``/``GET /v2/images/{id}/locations``, since 2.17) against real
processes: the data at an http URL is read and hashed, and the image activates or goes back
to queued."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.functional.api.import_helpers import OCTET, DataServer, new_image, wait_image


@pytest.fixture(scope="module")
def web():
    server = DataServer()
    yield server
    server.stop()


def add(http, image_id, body):
    return http.post(f"/v2/images/{image_id}/locations", json=body)


def test_location_import_hashes_and_activates(http, admin, web):
    data = os.urandom(50_000)
    web.files["loc.raw"] = data
    image_id = new_image(http)
    sha256 = hashlib.sha256(data).hexdigest()
    body = {"url": web.url("loc.raw"), "validation_data": {"os_hash_algo": "sha256", "os_hash_value": sha256}}
    resp = add(http, image_id, body)
    assert resp.status_code == 202, resp.text
    image = wait_image(http, image_id)
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    # Glance records the algorithm the caller validated with, and the value it computed
    assert image["os_hash_algo"] == "sha256" and image["os_hash_value"] == sha256
    assert http.get(f"/v2/images/{image_id}/file").content == data
    task = http.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
    assert task["type"] == "location_import" and task["status"] == "success"

    assert http.get(f"/v2/images/{image_id}/locations").status_code == 403
    resp = admin.get(f"/v2/images/{image_id}/locations")
    assert resp.status_code == 200
    assert resp.json() == [{"url": web.url("loc.raw"), "metadata": {}}]
    # only queued images take a location this way
    assert add(http, image_id, {"url": web.url("loc.raw")}).status_code == 409


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha512"])
def test_location_import_records_the_callers_algorithm(http, web, algo):
    data = os.urandom(3_000)
    web.files[f"{algo}.raw"] = data
    image_id = new_image(http)
    value = hashlib.new(algo, data).hexdigest()
    body = {
        "url": web.url(f"{algo}.raw"),
        "validation_data": {"os_hash_algo": algo, "os_hash_value": value.upper()},
    }
    assert add(http, image_id, body).status_code == 202
    image = wait_image(http, image_id)
    assert image["status"] == "active"
    assert (image["os_hash_algo"], image["os_hash_value"]) == (algo, value)
    assert image["checksum"] == hashlib.md5(data).hexdigest() and image["size"] == len(data)


def test_location_import_without_validation_data_uses_hashing_algorithm(http, web):
    data = os.urandom(2_000)
    web.files["plain.raw"] = data
    image_id = new_image(http)
    assert add(http, image_id, {"url": web.url("plain.raw")}).status_code == 202
    image = wait_image(http, image_id)
    assert image["status"] == "active"
    assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha512", hashlib.sha512(data).hexdigest())


def test_sha256_mismatch_leaves_the_image_as_it_was(http, admin, web):
    web.files["other.raw"] = b"some other data"
    image_id = new_image(http)
    before = http.get(f"/v2/images/{image_id}").json()
    wrong = hashlib.sha256(b"what the caller expected").hexdigest()
    body = {
        "url": web.url("other.raw"),
        "validation_data": {"os_hash_algo": "sha256", "os_hash_value": wrong},
    }
    assert add(http, image_id, body).status_code == 202
    image = wait_image(http, image_id)
    for key in ("status", "size", "checksum", "os_hash_algo", "os_hash_value", "virtual_size"):
        assert image[key] == before[key], key
    # As Glance 33 (and tempest's LocationImportTest): an http location stays on the queued
    # image (the http store cannot delete a location, Launchpad bug 2076648).
    kept = [{"url": web.url("other.raw"), "metadata": {}}]
    assert admin.get(f"/v2/images/{image_id}/locations").json() == kept
    task = http.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
    assert task["status"] == "failure" and "validation_data" in task["message"]


def test_hash_mismatch_returns_the_image_to_queued(http, web):
    web.files["bad.raw"] = b"not what you think"
    image_id = new_image(http)
    body = {"url": web.url("bad.raw"), "validation_data": {"os_hash_algo": "md5", "os_hash_value": "0" * 32}}
    assert add(http, image_id, body).status_code == 202
    image = wait_image(http, image_id)
    assert image["status"] == "queued" and image["checksum"] is None
    task = http.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
    assert task["status"] == "failure" and "validation_data" in task["message"]


def test_unreadable_url_returns_the_image_to_queued(http, web):
    image_id = new_image(http)
    assert add(http, image_id, {"url": web.url("missing.raw")}).status_code == 202
    assert wait_image(http, image_id)["status"] == "queued"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": 5},
        {"url": "http://127.0.0.1/x", "other": 1},
        {"url": "http://127.0.0.1/x", "validation_data": {"os_hash_algo": "sha256"}},
        {"url": "http://127.0.0.1/x", "validation_data": {"os_hash_value": "00"}},
        {"url": "http://127.0.0.1/x", "validation_data": {"os_hash_algo": "crc32", "os_hash_value": "00"}},
        {"url": "http://127.0.0.1/x", "validation_data": {"os_hash_algo": "md5", "os_hash_value": "z" * 32}},
        {"url": "http://127.0.0.1/x", "validation_data": {"os_hash_algo": "md5", "os_hash_value": "0" * 31}},
        {"url": "file:///etc/passwd"},
        {"url": "gopher://127.0.0.1/x"},
    ],
)
def test_bad_bodies_400(admin, body):
    image_id = new_image(admin)
    assert add(admin, image_id, body).status_code == 400
    assert admin.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def test_who_may_add(http, admin):
    image_id = new_image(http)
    assert add(http.as_other(), image_id, {"url": "http://127.0.0.1/x"}).status_code == 404
    reader = http.as_other(project=http.project, roles="reader")
    assert add(reader, image_id, {"url": "http://127.0.0.1/x"}).status_code == 403
    # only service users may point an image at a store other than http
    assert add(http, image_id, {"url": "rbd://fsid/pool/image/snap"}).status_code == 403
    # Glance asks for the 'service' role itself (the user's or a service token's): admin is
    # not enough
    assert add(admin, image_id, {"url": "rbd://fsid/pool/image/snap"}).status_code == 403
    assert http.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    # Glance checks the status before the policy: a reader gets 409 on an active image
    active = new_image(http)
    assert http.put(f"/v2/images/{active}/file", data=b"d", headers=OCTET).status_code == 204
    assert add(reader, active, {"url": "http://127.0.0.1/x"}).status_code == 409
    assert http.put(f"/v2/images/{image_id}/locations", json={}).headers["Allow"] == "POST"
    assert admin.get(f"/v2/images/{'0' * 36}/locations").status_code == 404


def test_a_service_token_may_add_other_stores(http):
    image_id = new_image(http)
    # nova sends the user's token and its own service token (X-Service-Roles: service)
    nova = http.as_other(project=http.project)
    resp = nova.post(
        f"/v2/images/{image_id}/locations",
        json={"url": "swift://127.0.0.1/nowhere/x"},
        headers={"X-Service-Roles": "service"},
    )
    assert resp.status_code == 202, resp.text
    # nothing to read there: the task fails and the image goes back to queued
    assert wait_image(http, image_id)["status"] == "queued"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",  # the metadata service
        "http://127.0.0.2/image.raw",  # loopback, not in allowed_hosts
        "http://[::1]/image.raw",
        "http://2130706433/image.raw",  # 127.0.0.1, encoded
    ],
)
def test_location_that_does_not_pass_the_import_filters_is_400(http, url):
    # Glance 33 (add_location): the same filters as web-download, before any task; tempest
    # looks for this phrase in the 400.
    image_id = new_image(http)
    resp = add(http, image_id, {"url": url})
    assert resp.status_code == 400, resp.text
    assert "does not pass filtering" in resp.text
    image = http.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "queued"
    assert http.get(f"/v2/images/{image_id}/tasks").json()["tasks"] == []
