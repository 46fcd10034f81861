"""What Nova's image API client (nova/image/glance.py, through python-glanceclient v2) sends,
as raw HTTP against real processes with ``show_multiple_locations`` and
``show_image_direct_url`` on (the settings Nova's location-based features need).

- show: ``GET /v2/schemas/image`` (glanceclient builds its image model from it), then
  ``GET /v2/images/{id}``; Nova reads the base properties by the schema and everything else as
  properties, and with ``include_locations`` adds ``direct_url`` to ``locations``.
- snapshot: ``POST /v2/images`` (no formats, Nova's snapshot properties), ``GET`` + ``PATCH``
  (glanceclient's update: a JSON patch of the changed attributes), then ``PUT /file`` with
  ``Content-Type: application/octet-stream`` and a chunked body (glanceclient reads the file
  in 64 KiB pieces into a generator), then ``GET``.
- download: ``GET /v2/images/{id}/file``, checked against ``os_hash_value`` or Content-MD5.
- location add (``_add_location``): ``add_image_location`` first (``GET /versions`` for
  v2.17, then ``POST /v2/images/{id}/locations``), the PATCH ``add /locations/-`` otherwise.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import uuid

import pytest
import requests

from tests.fixtures.glance_procs import start_glance
from tests.functional.api.import_helpers import DataServer, wait_image
from tests.functional.conftest import Http
from tests.unit.images.format_builders import MiB, qcow2

OCTET = {"Content-Type": "application/octet-stream"}
PATCH = "application/openstack-images-v2.1-json-patch"
CHUNKSIZE = 65536  # glanceclient.common.http.CHUNKSIZE


@pytest.fixture(scope="module")
def nova_glance(tmp_path_factory):
    procs = start_glance(
        tmp_path_factory.mktemp("glance-nova"),
        extra_api={
            "DEFAULT": {"show_multiple_locations": "true", "show_image_direct_url": "true"},
            # the test's data server is on 127.0.0.1 at a free port
            "import_filtering_opts": {"allowed_hosts": "[127.0.0.1]", "allowed_ports": "[]"},
        },
        workers=1,
    )
    yield procs
    procs.stop()


@pytest.fixture(scope="module")
def web():
    server = DataServer()
    yield server
    server.stop()


@pytest.fixture
def user(nova_glance) -> Http:
    return Http(nova_glance.api_url)


def chunked(data: bytes):
    """glanceclient's ``_chunk_body`` over a file object: a generator, so requests sends
    ``Transfer-Encoding: chunked``."""
    body = io.BytesIO(data)
    while chunk := body.read(CHUNKSIZE):
        yield chunk


def nova_show(http: Http, image_id: str, include_locations: bool = False) -> dict:
    """nova.image.glance.GlanceImageServiceV2.show, over raw HTTP."""
    schema = http.get("/v2/schemas/image")
    assert schema.status_code == 200
    base = set(schema.json()["properties"])
    resp = http.get(f"/v2/images/{image_id}")
    assert resp.status_code == 200, resp.text
    image = resp.json()
    omit = {"self", "schema", "protected", "virtual_size", "file", "tags"}
    out: dict = {"properties": {}}
    for name, value in image.items():
        if name in omit or (name in ("direct_url", "locations") and not include_locations):
            continue
        if name == "visibility":
            out["is_public"] = value == "public"
        elif name == "size" and value is None:
            out["size"] = 0
        elif name in base:
            out[name] = value
        else:
            out["properties"][name] = value
    for attr in ("created_at", "updated_at"):
        # nova: timeutils.parse_isotime
        out[attr] = datetime.datetime.fromisoformat(out[attr].replace("Z", "+00:00"))
    if include_locations:
        locations = out.get("locations") or []
        if out.get("direct_url"):
            locations.append({"url": out["direct_url"], "metadata": {}})
        out["locations"] = locations
    return out


def nova_snapshot(http: Http, data: bytes) -> tuple[str, requests.Response]:
    """compute API snapshot (create) + the libvirt driver's update with the image file."""
    instance = str(uuid.uuid4())
    # nova.compute.api.API._create_image -> image_api.create (is_public False -> private)
    resp = http.post(
        "/v2/images",
        json={
            "name": "snap-" + instance[:8],
            "visibility": "private",
            "min_ram": 512,
            "min_disk": 1,
            "instance_uuid": instance,
            "image_type": "snapshot",
            "user_id": http.user,
            "base_image_ref": str(uuid.uuid4()),
            "owner_project_name": "demo",
            "owner_user_name": "demo",
            "boot_roles": "member,reader",
            "hw_disk_bus": "virtio",
        },
    )
    assert resp.status_code == 201, resp.text
    image = resp.json()
    assert image["status"] == "queued" and image["disk_format"] is None
    image_id = image["id"]
    # driver snapshot -> image_api.update(..., purge_props=False): glanceclient's update GETs
    # the image and PATCHes what changed (warlock's JSON patch: replace for keys already in
    # the image, null ones included; add for new properties).
    assert http.get(f"/v2/images/{image_id}").status_code == 200
    ops = [
        {"op": "replace", "path": "/container_format", "value": "bare"},
        {"op": "replace", "path": "/disk_format", "value": "qcow2"},
        {"op": "add", "path": "/image_location", "value": "snapshot"},
        {"op": "add", "path": "/image_state", "value": "available"},
        {"op": "add", "path": "/owner_id", "value": http.project},
    ]
    resp = http.patch(f"/v2/images/{image_id}", ops)
    assert resp.status_code == 200, resp.text
    assert resp.json()["disk_format"] == "qcow2" and resp.json()["status"] == "queued"
    # _upload_data: glanceclient images.upload(image_id, file) -> chunked PUT
    upload = http.put(f"/v2/images/{image_id}/file", data=chunked(data), headers=OCTET)
    return image_id, upload


def test_snapshot_upload_chunked_then_show_and_download(user):
    data = qcow2(virtual_size=64 * MiB, length=4 * CHUNKSIZE) + os.urandom(3 * CHUNKSIZE + 123)
    image_id, resp = nova_snapshot(user, data)
    assert resp.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in resp.request.headers
    assert resp.request.headers["Content-Type"] == "application/octet-stream"
    assert resp.status_code == 204, resp.text
    assert resp.content == b""

    image = nova_show(user, image_id)
    assert image["status"] == "active" and image["is_public"] is False
    assert image["size"] == len(data) and image["disk_format"] == "qcow2"
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert image["owner"] == user.project and image["min_ram"] == 512 and image["min_disk"] == 1
    assert image["properties"]["image_type"] == "snapshot"
    assert image["properties"]["hw_disk_bus"] == "virtio"
    assert image["properties"]["owner_id"] == user.project
    assert "locations" not in image and "direct_url" not in image  # include_locations=False
    assert image["created_at"] <= image["updated_at"]

    # download: glanceclient checks the data against os_hash_value (or Content-MD5)
    got = user.get(f"/v2/images/{image_id}/file", stream=True)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-MD5"] == image["checksum"]
    body = b"".join(got.iter_content(CHUNKSIZE))
    assert hashlib.sha512(body).hexdigest() == image["os_hash_value"]


def test_snapshot_upload_of_an_empty_chunked_body(user):
    # Nova's force_activate: an upload of '' (glanceclient sends no chunk at all)
    image_id = user.create_image(disk_format="raw", container_format="bare")["id"]
    resp = user.put(f"/v2/images/{image_id}/file", data=chunked(b""), headers=OCTET)
    assert resp.status_code == 204, resp.text
    image = nova_show(user, image_id)
    assert image["status"] == "active" and image["size"] == 0
    assert image["checksum"] == hashlib.md5(b"").hexdigest()


def test_show_with_locations(user, nova_glance):
    data = os.urandom(100_000)
    image_id = user.create_image(disk_format="raw", container_format="bare")["id"]
    assert user.put(f"/v2/images/{image_id}/file", data=chunked(data), headers=OCTET).status_code == 204
    raw = user.get(f"/v2/images/{image_id}").json()
    url = f"file://{nova_glance.datadir}/{image_id}"
    assert raw["locations"] == [{"url": url, "metadata": {}}]
    assert raw["direct_url"] == url
    image = nova_show(user, image_id, include_locations=True)
    # Nova appends direct_url to the locations it got
    assert image["locations"] == [{"url": url, "metadata": {}}, {"url": url, "metadata": {}}]
    # a queued image: an empty list and no direct_url
    queued = user.create_image()["id"]
    raw = user.get(f"/v2/images/{queued}").json()
    assert raw["locations"] == [] and "direct_url" not in raw
    assert nova_show(user, queued, include_locations=True)["locations"] == []


def test_show_of_a_missing_or_foreign_image_is_404(user):
    # nova: glanceclient HTTPNotFound -> exception.ImageNotFound
    assert user.get(f"/v2/images/{uuid.uuid4()}").status_code == 404
    image_id = user.create_image()["id"]
    assert user.as_other().get(f"/v2/images/{image_id}").status_code == 404
    assert user.delete(f"/v2/images/{image_id}").status_code == 204
    assert user.get(f"/v2/images/{image_id}").status_code == 404


def test_add_location_as_nova_does(user, web, nova_glance):
    # _add_location: add_image_location (needs v2.17 in /versions), POST with empty
    # validation_data, then glanceclient GETs the image.
    versions = requests.get(nova_glance.api_url + "/versions", timeout=10).json()["versions"]
    assert "v2.17" in [v["id"] for v in versions]
    data = os.urandom(20_000)
    web.files["nova.raw"] = data
    image_id = user.create_image(disk_format="raw", container_format="bare")["id"]
    resp = user.post(
        f"/v2/images/{image_id}/locations", json={"url": web.url("nova.raw"), "validation_data": {}}
    )
    assert resp.status_code == 202, resp.text
    wait_image(user, image_id)
    image = nova_show(user, image_id, include_locations=True)
    assert image["status"] == "active"
    assert image["locations"][0] == {"url": web.url("nova.raw"), "metadata": {}}
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    # the PATCH fallback (older Glance) still works with show_multiple_locations
    other = user.create_image(disk_format="raw", container_format="bare")["id"]
    op = [{"op": "add", "path": "/locations/-", "value": {"url": web.url("nova.raw"), "metadata": {}}}]
    resp = user.patch(f"/v2/images/{other}", op)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "active"
    assert resp.json()["locations"] == [{"url": web.url("nova.raw"), "metadata": {}}]
