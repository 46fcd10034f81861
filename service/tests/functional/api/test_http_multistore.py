"""Multi-store against real processes: two file stores, discovery, uploads to a chosen store,
copy-image between them, per-store delete, web-download from a loopback server, and an API
killed in the middle of an import."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.fixtures.glance_procs import start_glance
from tests.functional.api.import_helpers import OCTET, DataServer, new_image, wait_image, wait_task
from tests.functional.conftest import Http


@pytest.fixture(scope="module")
def web():
    server = DataServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def multi(tmp_path_factory, web):
    work = tmp_path_factory.mktemp("multistore")
    extra = {
        "DEFAULT": {"enabled_backends": "fast:file,cheap:file"},
        "glance_store": {"default_backend": "fast"},
        "fast": {"filesystem_store_datadir": str(work / "fast"), "store_description": "Fast disks"},
        "cheap": {"filesystem_store_datadir": str(work / "cheap"), "weight": "10"},
        "os_glance_staging_store": {"filesystem_store_datadir": str(work / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(work / "tasks")},
        # loopback test server on a random port; 127.0.0.2 stays refused
        "import_filtering_opts": {"allowed_hosts": "[127.0.0.1]", "allowed_ports": "[]"},
    }
    procs = start_glance(work, extra_api=extra, workers=1)
    procs.dirs = {name: work / name for name in ("fast", "cheap", "staging")}
    yield procs
    procs.stop()


@pytest.fixture
def admin(multi) -> Http:
    return Http(multi.api_url, roles="admin,member,reader")


@pytest.fixture
def user(multi) -> Http:
    return Http(multi.api_url)


def files(procs, image_id) -> dict[str, list[str]]:
    return {name: sorted(f for f in os.listdir(d) if image_id in f) for name, d in procs.dirs.items()}


def upload(http, image_id, data, store=None):
    headers = {**OCTET, **({"X-Image-Meta-Store": store} if store else {})}
    return http.put(f"/v2/images/{image_id}/file", data=data, headers=headers)


def test_info_stores(user, admin):
    resp = user.get("/v2/info/stores")
    assert resp.status_code == 200
    assert resp.json() == {
        "stores": [{"id": "fast", "description": "Fast disks", "default": "true"}, {"id": "cheap"}]
    }
    assert user.get("/v2/info/stores/detail").status_code == 403
    detail = {s["id"]: s for s in admin.get("/v2/info/stores/detail").json()["stores"]}
    assert detail["cheap"]["type"] == "file" and detail["cheap"]["weight"] == 10
    assert detail["fast"]["properties"]["data_dir"].endswith("fast")
    service = Http(user.base_url, roles="service")
    assert service.get("/v2/info/stores/detail").status_code == 200


def test_versions_list_the_multistore_versions(multi):
    import requests

    ids = [v["id"] for v in requests.get(multi.api_url + "/versions", timeout=10).json()["versions"]]
    assert ids[:7] == ["v2.15", "v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8"]
    assert requests.get(multi.api_url + "/v2.12/images", timeout=10).status_code != 300


def test_upload_goes_to_the_chosen_store(user, multi):
    resp = user.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert resp.headers["OpenStack-image-store-ids"] == "fast,cheap"
    image_id = resp.json()["id"]
    assert upload(user, image_id, b"x", store="nowhere").status_code == 400
    assert user.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert upload(user, image_id, b"cheap data", store="cheap").status_code == 204
    image = user.get(f"/v2/images/{image_id}").json()
    assert image["stores"] == "cheap"
    assert files(multi, image_id) == {"fast": [], "cheap": [image_id], "staging": []}
    default = new_image(user)
    assert upload(user, default, b"fast data").status_code == 204
    assert user.get(f"/v2/images/{default}").json()["stores"] == "fast"


def test_copy_image_keeps_id_and_hashes_and_delete_from_one_store(user, admin, multi):
    data = os.urandom(300_000)
    image_id = new_image(user)
    assert upload(user, image_id, data).status_code == 204
    before = user.get(f"/v2/images/{image_id}").json()

    resp = admin.post(
        f"/v2/images/{image_id}/import", json={"method": {"name": "copy-image"}, "stores": ["cheap"]}
    )
    assert resp.status_code == 202, resp.text
    image = wait_image(user, image_id, prop=lambda i: i.get("os_glance_importing_to_stores") == "")
    assert image["status"] == "active"
    assert image["stores"] == "cheap,fast"  # by weight, highest first
    assert (image["checksum"], image["os_hash_value"], image["size"]) == (
        before["checksum"],
        before["os_hash_value"],
        len(data),
    )
    assert image["os_glance_failed_import"] == ""
    for store in ("fast", "cheap"):
        with open(multi.dirs[store] / image_id, "rb") as f:
            assert hashlib.sha512(f.read()).hexdigest() == before["os_hash_value"]

    # copying to a store that has it already, or to an unknown store
    body = {"method": {"name": "copy-image"}, "stores": ["cheap"]}
    assert admin.post(f"/v2/images/{image_id}/import", json=body).status_code == 400
    body = {"method": {"name": "copy-image"}, "stores": ["nowhere"]}
    assert admin.post(f"/v2/images/{image_id}/import", json=body).status_code == 409
    # all stores when it is in every one already: Glance answers 202 and starts nothing
    tasks = len(admin.get(f"/v2/images/{image_id}/tasks").json()["tasks"])
    body = {"method": {"name": "copy-image"}, "all_stores": True}
    assert admin.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    assert len(admin.get(f"/v2/images/{image_id}/tasks").json()["tasks"]) == tasks
    assert "os_glance_import_task" not in user.get(f"/v2/images/{image_id}").json()

    # DELETE /v2/stores/{store}/{image}
    assert user.delete(f"/v2/stores/fast/{image_id}").status_code == 403
    assert admin.delete(f"/v2/stores/nowhere/{image_id}").status_code == 409
    assert admin.delete(f"/v2/stores/fast/{'0' * 36}").status_code == 404
    assert admin.delete(f"/v2/stores/fast/{image_id}").status_code == 204
    assert admin.delete(f"/v2/stores/fast/{image_id}").status_code == 404
    assert user.get(f"/v2/images/{image_id}").json()["stores"] == "cheap"
    assert files(multi, image_id) == {"fast": [], "cheap": [image_id], "staging": []}
    assert admin.delete(f"/v2/stores/cheap/{image_id}").status_code == 403  # the last copy
    assert user.get(f"/v2/images/{image_id}/file").content == data


def test_delete_from_store_needs_an_active_image(admin):
    image_id = new_image(admin)
    assert admin.delete(f"/v2/stores/fast/{image_id}").status_code == 409


def test_delete_from_store_that_keeps_the_data_keeps_the_copy(user, admin, multi):
    """The store cannot remove its copy (the data path made a directory: unlink refuses even
    to root): the answer is the store's refusal (403, glance_store's file driver), and the copy
    and its location stay; once the store takes it, the delete goes through."""
    image_id = new_image(user)
    assert upload(user, image_id, b"two copies").status_code == 204
    body = {"method": {"name": "copy-image"}, "stores": ["cheap"]}
    assert admin.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    wait_image(user, image_id, prop=lambda i: i.get("os_glance_importing_to_stores") == "")
    data = multi.dirs["fast"] / image_id
    aside = data.with_name(image_id + ".aside")
    data.rename(aside)
    data.mkdir()
    try:
        resp = admin.delete(f"/v2/stores/fast/{image_id}")
        assert resp.status_code == 403, resp.text
        assert user.get(f"/v2/images/{image_id}").json()["stores"] == "cheap,fast"
    finally:
        data.rmdir()
        aside.rename(data)
    assert admin.delete(f"/v2/stores/fast/{image_id}").status_code == 204
    assert user.get(f"/v2/images/{image_id}").json()["stores"] == "cheap"
    assert not data.exists()


def test_copy_to_all_stores(user, admin, multi):
    image_id = new_image(user)
    assert upload(user, image_id, b"everywhere", store="cheap").status_code == 204
    body = {"method": {"name": "copy-image"}, "all_stores": True, "all_stores_must_succeed": False}
    assert admin.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    image = wait_image(user, image_id, prop=lambda i: i.get("os_glance_importing_to_stores") == "")
    assert image["stores"] == "cheap,fast"
    tasks = admin.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    assert tasks[-1]["input"]["backend"] == ["fast"]


@pytest.mark.parametrize(
    "fields, headers",
    [
        ({"all_stores": True, "stores": ["fast"]}, {}),
        ({"all_stores": True, "stores": []}, {}),
        ({"all_stores": True}, {"X-Image-Meta-Store": "fast"}),
        ({"stores": ["fast"]}, {"X-Image-Meta-Store": "fast"}),
        ({"stores": "fast"}, {}),
    ],
)
def test_import_store_field_combinations_400(user, multi, fields, headers):
    # glance.common.utils.get_stores_from_request
    image_id = new_image(user)
    assert user.put(f"/v2/images/{image_id}/stage", data=b"x", headers=OCTET).status_code == 204
    body = {"method": {"name": "glance-direct"}, **fields}
    resp = user.post(f"/v2/images/{image_id}/import", json=body, headers=headers)
    assert resp.status_code == 400, resp.text
    assert user.get(f"/v2/images/{image_id}").json()["status"] == "uploading"


def test_import_to_the_store_in_the_header(user, multi):
    image_id = new_image(user)
    assert user.put(f"/v2/images/{image_id}/stage", data=b"hdr", headers=OCTET).status_code == 204
    body = {"method": {"name": "glance-direct"}, "all_stores": False}
    resp = user.post(f"/v2/images/{image_id}/import", json=body, headers={"X-Image-Meta-Store": "cheap"})
    assert resp.status_code == 202, resp.text
    image = wait_image(user, image_id)
    assert image["status"] == "active" and image["stores"] == "cheap"


def test_glance_direct_to_two_stores(user, multi):
    data = os.urandom(70_000)
    image_id = new_image(user)
    assert user.put(f"/v2/images/{image_id}/stage", data=data, headers=OCTET).status_code == 204
    assert files(multi, image_id)["staging"] == [image_id]
    body = {"method": {"name": "glance-direct"}, "stores": ["fast", "cheap"]}
    assert user.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    image = wait_image(user, image_id)
    assert image["status"] == "active" and image["stores"] == "cheap,fast"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert files(multi, image_id) == {"fast": [image_id], "cheap": [image_id], "staging": []}


def test_web_download(user, web, multi):
    data = os.urandom(123_456)
    web.files["web.raw"] = data
    image_id = new_image(user)
    body = {"method": {"name": "web-download", "uri": web.url("web.raw")}, "stores": ["cheap"]}
    resp = user.post(f"/v2/images/{image_id}/import", json=body)
    assert resp.status_code == 202, resp.text
    image = wait_image(user, image_id)
    assert image["status"] == "active" and image["stores"] == "cheap"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert files(multi, image_id) == {"fast": [], "cheap": [image_id], "staging": []}


def test_location_post_needs_an_http_store_for_normal_users(user, web, multi):
    # no http store among enabled_backends: glance.common.utils.is_http_store_configured
    web.files["loc.raw"] = b"remote"
    image_id = new_image(user)
    resp = user.post(f"/v2/images/{image_id}/locations", json={"url": web.url("loc.raw")})
    assert resp.status_code == 403 and "http store must be enabled" in resp.text
    assert user.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def test_web_download_refusals(user, web, multi):
    image_id = new_image(user)
    refused = f"http://127.0.0.2:{web.port}/web.raw"
    body = {"method": {"name": "web-download", "uri": refused}}
    assert user.post(f"/v2/images/{image_id}/import", json=body).status_code == 400
    # a redirect to a refused host fails the import; the image goes back to queued
    body = {"method": {"name": "web-download", "uri": web.url(f"redirect?to={refused}")}}
    assert user.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    image = wait_image(user, image_id)
    assert image["status"] == "queued" and image["size"] is None
    task = user.get(f"/v2/images/{image_id}/tasks").json()["tasks"][-1]
    assert task["status"] == "failure" and "filters" in task["message"]
    # a missing file also fails cleanly
    body = {"method": {"name": "web-download", "uri": web.url("missing")}}
    assert user.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    assert wait_image(user, image_id)["status"] == "queued"
    assert files(multi, image_id) == {"fast": [], "cheap": [], "staging": []}


def test_import_lock_is_exclusive(user, web, multi):
    web._release.clear()
    web.files["lock.raw"] = os.urandom(4 * 1024 * 1024)
    image_id = new_image(user)
    body = {"method": {"name": "web-download", "uri": web.url("slow/lock.raw")}}
    assert user.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    image = user.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "importing"
    assert image["os_glance_import_task"]
    assert image["os_glance_importing_to_stores"] == "fast"
    # a second import is refused while the first runs
    assert user.post(f"/v2/images/{image_id}/import", json=body).status_code == 409
    web.release()
    image = wait_image(user, image_id)
    assert image["status"] == "active"


def test_kill_api_during_import_leaves_no_stuck_image_and_no_orphan_data(user, admin, web, multi):
    web._release.clear()
    web.files["crash.raw"] = os.urandom(8 * 1024 * 1024)
    image_id = new_image(user)
    body = {"method": {"name": "web-download", "uri": web.url("slow/crash.raw")}, "stores": ["fast", "cheap"]}
    assert user.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    task_id = user.get(f"/v2/images/{image_id}").json()["os_glance_import_task"]
    # the download is half way: partial staged data exists
    from tests.functional.data.helpers import wait_for

    wait_for(lambda: any(".partial-" in f for f in files(multi, image_id)["staging"]), timeout=20)
    multi.kill_api()
    web.release()
    multi.start_api()
    image = user.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "queued"
    assert "os_glance_import_task" not in image
    assert image["os_glance_importing_to_stores"] == ""
    assert files(multi, image_id) == {"fast": [], "cheap": [], "staging": []}
    task = wait_task(admin, task_id)
    assert task["status"] == "failure" and "interrupted" in task["message"]
    # and the image can be imported again
    web.files["again.raw"] = b"again"
    body = {"method": {"name": "web-download", "uri": web.url("again.raw")}}
    assert user.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    assert wait_image(user, image_id)["status"] == "active"


def test_web_download_is_format_inspected(user, web, multi):
    from tests.unit.images.format_builders import qcow2

    # a qcow2 with a backing file is refused whatever it is labelled: the import fails
    web.files["backed.qcow2"] = qcow2(backing=True)
    image_id = user.create_image(disk_format="qcow2", container_format="bare")["id"]
    body = {"method": {"name": "web-download", "uri": web.url("backed.qcow2")}}
    assert user.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    image = wait_image(user, image_id)
    assert image["status"] == "queued" and image["size"] is None
    task = user.get(f"/v2/images/{image_id}/tasks").json()["tasks"][-1]
    assert task["status"] == "failure" and "backing" in task["message"].lower()
    assert files(multi, image_id) == {"fast": [], "cheap": [], "staging": []}
    # a well-formed qcow2 is imported with its virtual size from the header
    web.files["good.qcow2"] = qcow2(virtual_size=10 * 1024 * 1024)
    image_id = user.create_image(disk_format="qcow2", container_format="bare")["id"]
    body = {"method": {"name": "web-download", "uri": web.url("good.qcow2")}}
    assert user.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    image = wait_image(user, image_id)
    assert image["status"] == "active" and image["virtual_size"] == 10 * 1024 * 1024
