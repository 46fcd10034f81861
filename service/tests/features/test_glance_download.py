"""glance-download (issue 18): an image of upstream Glance 33 in RegionTwo imported into this
service (RegionOne) through the same Keystone.

Both regions sit behind the test Keystone (``tests/fixtures/keystone.py``): upstream Glance 33
from its own virtualenv (``tests/fixtures/upstream_glance.py``) is the ``image`` service of
RegionTwo, ours is RegionOne's. A user of project alpha uploads to upstream and asks ours to
import with ``glance-download``: ours finds RegionTwo in that user's catalog, reads the record
and the data with the user's token, and activates the image with the same data and the
properties upstream's ``[glance_download_properties] extra_properties`` carries over.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import time
import uuid

import pytest
import requests

from tests.fixtures.glance_procs import start_glance
from tests.fixtures.keystone import keystone  # noqa: F401  (session fixture, by name)
from tests.fixtures.memcached import memcached  # noqa: F401
from tests.fixtures.upstream_glance import require_upstream_venv, upstream_glance_region

pytestmark = pytest.mark.keystone

USER = "alpha-member"
METHODS = "[glance-direct, web-download, copy-image, glance-download]"
# On the source: carried by upstream's default prefixes (hw_, trait:, os_distro,
# os_secure_boot, os_type) or not.
CARRIED = {
    "hw_disk_bus": "scsi",
    "hw_scsi_model": "virtio-scsi",
    "os_distro": "debian",
    "os_type": "linux",
    "trait:CUSTOM_GDL": "required",
}
NOT_CARRIED = {"architecture": "x86_64", "gdl_note": "stays in RegionTwo", "os_version": "12"}


# Keystone and memcached are asked for by name, after the check of the upstream virtualenv: as
# arguments, pytest would start these session fixtures before any module fixture.
@pytest.fixture(scope="module")
def upstream(request, tmp_path_factory):
    require_upstream_venv()
    ks = request.getfixturevalue("keystone")
    mc = request.getfixturevalue("memcached")
    for glance in upstream_glance_region(tmp_path_factory.mktemp("upstream-glance"), ks, mc.address):
        yield glance, ks, mc


@pytest.fixture(scope="module")
def ours(tmp_path_factory, upstream):
    _, ks, mc = upstream
    procs = start_glance(
        tmp_path_factory.mktemp("glance-gdl"),
        flavor="keystone",
        keystone={
            "public_url": ks.url,
            "internal_url": ks.url,
            "password": ks.glance_password,
            "user": "glance",
            "project": "service",
            "region": "RegionOne",
            "memcached_servers": [mc.address],
        },
        extra_api={
            "DEFAULT": {"enabled_import_methods": METHODS},
            # upstream's endpoint is on loopback and a private port
            "import_filtering_opts": {"allowed_hosts": "[127.0.0.1]", "allowed_ports": "[]"},
        },
        workers=1,
    )
    before = ks.image_url
    try:
        ks.register_image_endpoints(procs.api_url)
        yield procs
    finally:
        try:
            if before:
                ks.register_image_endpoints(before)
        finally:
            procs.stop()


class Api:
    def __init__(self, url: str, token: str):
        self.url = url
        self.headers = {"X-Auth-Token": token}

    def call(self, method: str, path: str, **kw) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def create(self, **fields) -> dict:
        body = {
            "name": f"gdl-{uuid.uuid4().hex[:8]}",
            "disk_format": "raw",
            "container_format": "bare",
            **fields,
        }
        resp = self.call("POST", "/v2/images", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def image(self, image_id: str) -> dict:
        resp = self.call("GET", f"/v2/images/{image_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture
def token(upstream, ours):
    # A fresh token, once both regions are registered: its catalog has them.
    return upstream[1].token(USER, fresh=True)


@pytest.fixture
def remote(upstream, token) -> Api:
    return Api(upstream[0].url, token)


@pytest.fixture
def local(ours, token) -> Api:
    return Api(ours.api_url, token)


def remote_active_image(remote: Api, data: bytes) -> dict:
    image = remote.create(**CARRIED, **NOT_CARRIED)
    resp = remote.call(
        "PUT",
        f"/v2/images/{image['id']}/file",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 204, resp.text
    image = remote.image(image["id"])
    assert image["status"] == "active"
    return image


def glance_download(local: Api, image_id: str, remote_id: str, region: str = "RegionTwo", **extra):
    method = {"name": "glance-download", "glance_image_id": remote_id, "glance_region": region, **extra}
    return local.call("POST", f"/v2/images/{image_id}/import", json={"method": method})


def settled_task(local: Api, image_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = local.call("GET", f"/v2/images/{image_id}/tasks").json()["tasks"]
        if tasks and tasks[-1]["status"] in ("success", "failure"):
            return tasks[-1]
        time.sleep(0.3)
    raise AssertionError(f"the import of {image_id} did not finish in {timeout}s")


def test_image_of_upstream_region_imported_with_data_and_properties(remote, local):
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = remote_active_image(remote, data)
    # The local image declares other formats: the source's replace them, as upstream does.
    image = local.create(disk_format="qcow2", container_format="ovf", gdl_local="kept")

    resp = glance_download(local, image["id"], source["id"])
    assert resp.status_code == 202, resp.text
    task = settled_task(local, image["id"])
    assert task["status"] == "success", task["message"]
    assert task["input"]["import_req"]["method"]["glance_service_interface"] == "public"
    assert local.headers["X-Auth-Token"] not in json.dumps(task)  # the token stays in memory

    got = local.image(image["id"])
    assert got["status"] == "active"
    assert got["size"] == len(data) == source["size"]
    assert got["os_hash_algo"] == "sha512"
    assert got["os_hash_value"] == hashlib.sha512(data).hexdigest() == source["os_hash_value"]
    assert got["checksum"] == hashlib.md5(data).hexdigest()
    assert (got["disk_format"], got["container_format"]) == ("raw", "bare")
    for key, value in CARRIED.items():
        assert got.get(key) == value, key
    for key in NOT_CARRIED:
        assert key not in got, key
    assert got["gdl_local"] == "kept"
    assert got["name"] == image["name"]  # the name is not carried
    body = local.call("GET", f"/v2/images/{image['id']}/file")
    assert body.status_code == 200
    assert hashlib.sha512(body.content).hexdigest() == hashlib.sha512(data).hexdigest()


def _assert_failed_and_restored(local: Api, image: dict, message: str) -> None:
    task = settled_task(local, image["id"])
    assert task["status"] == "failure"
    assert message in task["message"]
    got = local.image(image["id"])
    assert got["status"] == "queued"
    assert (got["disk_format"], got["container_format"]) == (image["disk_format"], image["container_format"])
    for key in CARRIED:
        assert key not in got, key
    assert "os_glance_import_task" not in got


def test_unknown_region_fails_the_task(remote, local):
    source = remote_active_image(remote, b"region nine")
    image = local.create(disk_format="qcow2")
    assert glance_download(local, image["id"], source["id"], region="RegionNine").status_code == 202
    _assert_failed_and_restored(local, image, "public glance endpoint not found for region RegionNine")


def test_interface_not_in_catalog_fails_the_task(remote, local):
    source = remote_active_image(remote, b"no such interface")
    image = local.create()
    resp = glance_download(local, image["id"], source["id"], glance_service_interface="private")
    assert resp.status_code == 202
    _assert_failed_and_restored(local, image, "private glance endpoint not found for region RegionTwo")


def test_remote_image_not_active_fails_the_task(remote, local):
    source = remote.create(**CARRIED)  # queued: no data
    image = local.create(disk_format="qcow2")
    assert glance_download(local, image["id"], source["id"]).status_code == 202
    _assert_failed_and_restored(local, image, "Source image status should be active instead of queued")


def test_data_unreadable_after_the_metadata_puts_the_metadata_back(upstream, remote, local):
    source = remote_active_image(remote, os.urandom(2048))
    # upstream's file store loses the data: the record reads, the data does not
    (upstream[0].server.store_dir / source["id"]).unlink()
    image = local.create(disk_format="qcow2", os_distro="ubuntu", hw_disk_bus="ide")
    assert glance_download(local, image["id"], source["id"]).status_code == 202
    task = settled_task(local, image["id"])
    assert task["status"] == "failure"
    assert f"/v2/images/{source['id']}/file failed: HTTP" in task["message"]
    got = local.image(image["id"])
    assert got["status"] == "queued"
    assert (got["disk_format"], got["container_format"]) == ("qcow2", "bare")
    assert (got["os_distro"], got["hw_disk_bus"]) == ("ubuntu", "ide")  # the former values
    for key in ("hw_scsi_model", "os_type", "trait:CUSTOM_GDL"):  # set by the import, taken back
        assert key not in got, key


def test_remote_image_not_found_fails_the_task(remote, local):
    image = local.create()
    missing = str(uuid.uuid4())
    assert glance_download(local, image["id"], missing).status_code == 202
    _assert_failed_and_restored(
        local, image, f"Image {missing} of region RegionTwo could not be read: HTTP 404"
    )


def test_the_import_can_be_retried_after_a_failure(remote, local):
    data = os.urandom(4096)
    source = remote_active_image(remote, data)
    image = local.create()
    assert glance_download(local, image["id"], source["id"], region="RegionNine").status_code == 202
    assert settled_task(local, image["id"])["status"] == "failure"
    assert glance_download(local, image["id"], source["id"]).status_code == 202
    deadline = time.monotonic() + 120
    while local.image(image["id"])["status"] != "active" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert local.image(image["id"])["os_hash_value"] == hashlib.sha512(data).hexdigest()


@pytest.mark.parametrize(
    "method, message",
    [
        (
            {"glance_image_id": str(uuid.uuid4())},
            "'glance_region' needs to be set for glance-download import method",
        ),
        (
            {"glance_region": "RegionTwo"},
            "'glance_image_id' needs to be set for glance-download import method",
        ),
        (
            {"glance_region": "RegionTwo", "glance_image_id": "not-a-uuid"},
            "Remote image id does not look like a UUID: not-a-uuid",
        ),
    ],
)
def test_request_refusals_as_upstream(local, method, message):
    image = local.create()
    resp = local.call(
        "POST", f"/v2/images/{image['id']}/import", json={"method": {"name": "glance-download", **method}}
    )
    assert resp.status_code == 400
    assert message in html.unescape(resp.text)
    assert local.image(image["id"])["status"] == "queued"


def test_only_a_queued_image_is_a_target(remote, local):
    source = remote_active_image(remote, b"staged")
    image = local.create()
    resp = local.call(
        "PUT",
        f"/v2/images/{image['id']}/stage",
        data=b"x",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 204
    resp = glance_download(local, image["id"], source["id"])
    assert resp.status_code == 409
    assert "Image needs to be in 'queued' state to use 'glance-download' method" in html.unescape(resp.text)
