"""Interoperable import on a single store (the shared functional deployment): discovery,
stage, glance-direct, and every refusal of POST /import with its code."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.functional.api.import_helpers import OCTET, new_image, wait_image


def stage(http, image_id, data, headers=None):
    return http.put(f"/v2/images/{image_id}/stage", data=data, headers={**OCTET, **(headers or {})})


def do_import(http, image_id, body):
    return http.post(f"/v2/images/{image_id}/import", json=body)


def test_info_import_lists_glances_default_methods(http):
    resp = http.get("/v2/info/import")
    assert resp.status_code == 200
    assert resp.json() == {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": ["glance-direct", "web-download", "copy-image"],
        }
    }


def test_info_stores_is_404_without_multistore(http):
    resp = http.get("/v2/info/stores", headers={"Accept": "application/json"})
    assert resp.status_code == 404
    assert "Multi backend is not supported" in resp.json()["message"]
    assert http.get("/v2/info/stores/detail").status_code == 404


def test_glance_direct_round_trip(http, glance):
    data = os.urandom(200_001)
    image_id = new_image(http)
    resp = stage(http, image_id, data)
    assert resp.status_code == 204, resp.text
    staged = http.get(f"/v2/images/{image_id}").json()
    assert staged["status"] == "uploading"
    assert "os_glance_stage_host" not in staged  # hidden, like Glance
    # staging twice is a conflict: the image is no longer queued
    assert stage(http, image_id, b"again").status_code == 409

    resp = do_import(http, image_id, {"method": {"name": "glance-direct"}})
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    image = wait_image(http, image_id)
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert http.get(f"/v2/images/{image_id}/file").content == data
    assert os.listdir(glance.datadir).count(image_id) == 1

    tasks = http.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    assert len(tasks) == 1
    task = tasks[0]
    assert task["type"] == "api_image_import" and task["status"] == "success"
    assert task["input"]["import_req"]["method"]["name"] == "glance-direct"
    assert task["image_id"] == image_id and task["owner"] == http.project
    assert task["request_id"].startswith("req-") and task["result"] == {"image_id": image_id}
    assert len(task["created_at"]) == 26  # raw DB timestamp with microseconds, like Glance


def test_request_id_of_the_import_is_the_tasks(http):
    image_id = new_image(http)
    assert stage(http, image_id, b"abc").status_code == 204
    resp = do_import(http, image_id, {"method": {"name": "glance-direct"}})
    assert resp.status_code == 202
    wait_image(http, image_id)
    task = http.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
    assert task["request_id"] == resp.headers["x-openstack-request-id"]


def test_stage_refusals(http):
    image_id = new_image(http)
    assert stage(http, image_id, b"x", {"Content-Type": "application/json"}).status_code == 415
    assert stage(http, "0" * 36, b"x").status_code == 404
    other = http.as_other()
    assert stage(other, image_id, b"x").status_code == 404  # cannot see it
    reader = http.as_other(project=http.project, roles="reader")
    assert stage(reader, image_id, b"x").status_code == 403
    assert stage(http, image_id, b"x", {"x-openstack-image-size": "5"}).status_code == 400
    assert http.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    # after a refused stage the image can still be staged
    assert stage(http, image_id, b"fine").status_code == 204


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"method": "glance-direct"},
        {"method": {}},
        {"method": {"name": "no-such-method"}},
        {"method": {"name": "glance-download"}},
        {"method": {"name": "glance-direct"}, "all_stores": "yes"},
        {"method": {"name": "glance-direct"}, "all_stores_must_succeed": 1},
        {"method": {"name": "web-download"}},
        {"method": {"name": "web-download", "uri": "ftp://127.0.0.1/x"}},
        # link-local (the metadata service) is refused unless allowed_hosts names it
        {"method": {"name": "web-download", "uri": "http://169.254.169.254:80/x"}},
    ],
)
def test_import_body_400(http, body):
    image_id = new_image(http)
    resp = do_import(http, image_id, body)
    assert resp.status_code == 400, resp.text
    assert http.get(f"/v2/images/{image_id}").json()["status"] == "queued"


@pytest.mark.parametrize(
    "fields, headers",
    [
        # what tempest's images client sends when it names no stores
        ({"all_stores": False}, {}),
        ({"all_stores": True}, {}),
        ({"stores": ["x"]}, {}),
        ({"stores": "not-a-list"}, {}),
        ({"all_stores_must_succeed": True}, {}),
        ({"all_stores": False, "all_stores_must_succeed": True}, {}),
        ({}, {"X-Image-Meta-Store": "x"}),
    ],
)
def test_single_store_ignores_the_store_fields(http, fields, headers):
    # Glance without enabled_backends imports to its one store whatever these say.
    data = os.urandom(1000)
    image_id = new_image(http)
    assert stage(http, image_id, data).status_code == 204
    resp = http.post(
        f"/v2/images/{image_id}/import",
        json={"method": {"name": "glance-direct"}, **fields},
        headers=headers,
    )
    assert resp.status_code == 202, resp.text
    image = wait_image(http, image_id)
    assert image["status"] == "active" and image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    task = http.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
    assert task["input"]["backend"] == [None]


def test_web_download_with_all_stores_false_is_accepted(http):
    image_id = new_image(http)
    # port 80 passes the default filtering; nothing listens there, so the task fails later
    body = {"method": {"name": "web-download", "uri": "http://127.0.0.1/x.raw"}, "all_stores": False}
    resp = do_import(http, image_id, body)
    assert resp.status_code == 202, resp.text
    assert wait_image(http, image_id)["status"] == "queued"
    task = http.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
    assert task["status"] == "failure" and task["input"]["import_req"]["all_stores"] is False


def test_all_stores_must_succeed_false_is_checked_after_the_image(http):
    # Glance looks the image up, checks its status and the policy first.
    body = {"method": {"name": "glance-direct"}, "all_stores_must_succeed": False}
    assert do_import(http, "0" * 36, body).status_code == 404
    image_id = new_image(http)
    assert do_import(http.as_other(), image_id, body).status_code == 404
    assert do_import(http, image_id, body).status_code == 409  # not staged
    assert stage(http, image_id, b"x").status_code == 204
    resp = do_import(http, image_id, body)
    assert resp.status_code == 400 and "enabled_backends" in resp.text
    assert http.get(f"/v2/images/{image_id}").json()["status"] == "uploading"


def test_import_body_not_json_400(http):
    image_id = new_image(http)
    resp = http.post(
        f"/v2/images/{image_id}/import", data=b"{bad", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400


def test_import_status_409s(http):
    queued = new_image(http)
    # glance-direct needs staged data
    assert do_import(http, queued, {"method": {"name": "glance-direct"}}).status_code == 409
    # formats must be set first
    bare = http.create_image()["id"]
    assert stage(http, bare, b"x").status_code == 204
    resp = do_import(http, bare, {"method": {"name": "glance-direct"}})
    assert resp.status_code == 409 and "needs to be set" in resp.text
    # web-download needs a queued image
    assert (
        do_import(http, bare, {"method": {"name": "web-download", "uri": "http://example.org/"}}).status_code
        == 409
    )
    # an active image cannot be imported into
    active = new_image(http)
    assert http.put(f"/v2/images/{active}/file", data=b"d", headers=OCTET).status_code == 204
    assert do_import(http, active, {"method": {"name": "glance-direct"}}).status_code == 409


def test_import_policy(http, admin):
    image_id = new_image(http)
    assert stage(http, image_id, b"x").status_code == 204
    body = {"method": {"name": "glance-direct"}}
    assert do_import(http.as_other(), image_id, body).status_code == 404
    reader = http.as_other(project=http.project, roles="reader")
    assert do_import(reader, image_id, body).status_code == 403
    # copy-image is admin only (checked before anything about stores)
    active = new_image(http)
    assert http.put(f"/v2/images/{active}/file", data=b"d", headers=OCTET).status_code == 204
    assert do_import(http, active, {"method": {"name": "copy-image"}}).status_code == 403
    # and needs several stores
    assert do_import(admin, active, {"method": {"name": "copy-image"}}).status_code == 400


def test_image_tasks_404_for_invisible_images(http):
    image_id = new_image(http)
    assert http.get(f"/v2/images/{image_id}/tasks").json() == {"tasks": []}
    assert http.as_other().get(f"/v2/images/{image_id}/tasks").status_code == 404
    assert http.get(f"/v2/images/{image_id}/tasks", data=b"x").status_code == 400
    assert http.post(f"/v2/images/{image_id}/tasks").status_code == 405


def test_deleting_an_uploading_image_removes_the_staged_data(http, glance):
    image_id = new_image(http)
    assert stage(http, image_id, b"staged").status_code == 204
    staged = os.path.join("/tmp/staging", image_id)  # node_staging_uri's default
    assert os.path.exists(staged)
    assert http.delete(f"/v2/images/{image_id}").status_code == 204
    assert not os.path.exists(staged)
    assert do_import(http, image_id, {"method": {"name": "glance-direct"}}).status_code == 404
