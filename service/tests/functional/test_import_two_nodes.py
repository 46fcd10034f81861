"""glance-direct across two API nodes (issue 16): two real glance-api processes on one
glance-registry, each with its own staging directory (as on two hosts), one shared image
directory (a shared file store). Data staged through node A is imported or deleted through
node B: B hands the request to A (A's ``worker_self_reference_url``, recorded on the image
as ``os_glance_stage_host``), as upstream Glance does."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.fixtures.glance_procs import free_port, start_glance
from tests.functional.api.import_helpers import OCTET, wait_image
from tests.functional.conftest import Http


def _node_vars(port: int) -> dict:
    return {"glance_api_port": port, "glance_worker_self_reference_url": f"http://127.0.0.1:{port}"}


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    base = tmp_path_factory.mktemp("two-nodes")
    staging_a, staging_b = base / "staging-a", base / "staging-b"
    staging_a.mkdir()
    staging_b.mkdir()
    node_a = start_glance(
        base / "a",
        workers=1,
        extra_vars=_node_vars(free_port()),
        extra_api={"DEFAULT": {"node_staging_uri": f"file://{staging_a}"}},
    )
    try:
        node_b = node_a.add_api(
            base / "b",
            extra_vars=_node_vars(free_port()),
            extra_api={"DEFAULT": {"node_staging_uri": f"file://{staging_b}"}},
        )
    except BaseException:
        node_a.stop()
        raise
    yield node_a, node_b, staging_a, staging_b
    node_b.stop()
    node_a.stop()


def _new_image(http: Http) -> str:
    return http.create_image(disk_format="raw", container_format="bare")["id"]


def _staged(staging: Path, image_id: str) -> bool:
    return (staging / image_id).exists()


def test_the_rendered_config_names_each_nodes_own_url(two_nodes):
    node_a, node_b, _, _ = two_nodes
    for node in (node_a, node_b):
        assert f"worker_self_reference_url = {node.api_url}\n" in node.api_conf.read_text()


def test_stage_on_a_import_on_b(two_nodes):
    node_a, node_b, staging_a, staging_b = two_nodes
    on_a = Http(node_a.api_url)
    on_b = Http(node_b.api_url, project=on_a.project, user=on_a.user)
    data = os.urandom(3 * 1024 * 1024 + 17)
    image_id = _new_image(on_a)

    resp = on_a.put(f"/v2/images/{image_id}/stage", data=data, headers=OCTET)
    assert resp.status_code == 204, resp.text
    assert _staged(staging_a, image_id) and not _staged(staging_b, image_id)
    assert "os_glance_stage_host" not in on_b.get(f"/v2/images/{image_id}").json()  # hidden

    resp = on_b.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    image = wait_image(on_b, image_id)
    assert image["status"] == "active", image
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert on_b.get(f"/v2/images/{image_id}/file").content == data
    # The import ran on A, which held the data, and A removed it afterwards.
    assert not _staged(staging_a, image_id)
    task = on_b.get(f"/v2/images/{image_id}/tasks").json()["tasks"][0]
    assert task["status"] == "success", task
    # The client sees the request id of the node that did the work (upstream's rule).
    assert task["request_id"] == resp.headers["x-openstack-request-id"]


def test_stage_on_a_delete_on_b_removes_as_staged_data(two_nodes):
    node_a, node_b, staging_a, _ = two_nodes
    on_a = Http(node_a.api_url)
    on_b = Http(node_b.api_url, project=on_a.project, user=on_a.user)
    image_id = _new_image(on_a)
    assert on_a.put(f"/v2/images/{image_id}/stage", data=b"x" * 4096, headers=OCTET).status_code == 204
    assert _staged(staging_a, image_id)

    resp = on_b.delete(f"/v2/images/{image_id}")
    assert resp.status_code == 204, resp.text
    assert not _staged(staging_a, image_id)
    assert on_a.get(f"/v2/images/{image_id}").status_code == 404


def test_the_stage_node_answers_for_itself(two_nodes):
    """The node that holds the data imports it itself (no hand-off)."""
    node_a, _, staging_a, _ = two_nodes
    on_a = Http(node_a.api_url)
    image_id = _new_image(on_a)
    data = os.urandom(70_000)
    assert on_a.put(f"/v2/images/{image_id}/stage", data=data, headers=OCTET).status_code == 204
    resp = on_a.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 202, resp.text
    image = wait_image(on_a, image_id)
    assert image["status"] == "active" and image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert not _staged(staging_a, image_id)


def test_the_receiving_node_checks_the_caller_first(two_nodes):
    """B checks the request (here the policy) before any hand-off, as upstream does; the
    staged data stays on A until a delete through B removes it."""
    node_a, node_b, staging_a, _ = two_nodes
    on_a = Http(node_a.api_url)
    on_b = Http(node_b.api_url, project=on_a.project, user=on_a.user)
    image_id = _new_image(on_a)
    assert on_a.put(f"/v2/images/{image_id}/stage", data=b"abc", headers=OCTET).status_code == 204
    # A reader of the project may see the image but not import it.
    reader = Http(node_b.api_url, project=on_a.project, roles="reader")
    resp = reader.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 403, resp.text
    assert _staged(staging_a, image_id)
    assert on_b.delete(f"/v2/images/{image_id}").status_code == 204
    assert not _staged(staging_a, image_id)


def test_stage_node_down_import_is_504_and_delete_goes_on_locally(two_nodes):
    """Last in this module: node A's API is killed. As upstream: the import cannot reach the data
    (504); a delete still deletes the image (the staged data stays on A's disk)."""
    node_a, node_b, staging_a, _ = two_nodes
    on_a = Http(node_a.api_url)
    on_b = Http(node_b.api_url, project=on_a.project, user=on_a.user)
    image_id = _new_image(on_a)
    assert on_a.put(f"/v2/images/{image_id}/stage", data=b"abc", headers=OCTET).status_code == 204
    node_a.kill_api()  # A's API only: the registry (started with A) keeps serving B
    resp = on_b.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 504, resp.text
    assert on_b.get(f"/v2/images/{image_id}").json()["status"] == "uploading"
    assert on_b.delete(f"/v2/images/{image_id}").status_code == 204
    assert on_b.get(f"/v2/images/{image_id}").status_code == 404
    assert _staged(staging_a, image_id)
