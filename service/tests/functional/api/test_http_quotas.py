"""Quotas against real processes with small limits: every refusal is a 413 that names the limit,
and a refused upload leaves the image queued with no data kept (reference section 6)."""

from __future__ import annotations

import os

import pytest

from tests.fixtures.glance_procs import start_glance
from tests.functional.conftest import Http
from tests.functional.data.helpers import OCTET, image_files

STORAGE = 100 * 1024  # user_storage_quota = 100KB


@pytest.fixture(scope="module")
def quota_glance(tmp_path_factory):
    procs = start_glance(
        tmp_path_factory.mktemp("glance-quotas"),
        workers=1,
        extra_api={
            "DEFAULT": {
                "user_storage_quota": "100KB",
                "image_member_quota": 2,
                "image_property_quota": 3,
                "image_tag_quota": 2,
                "image_location_quota": 1,
                "show_multiple_locations": "true",
            }
        },
    )
    yield procs
    procs.stop()


@pytest.fixture
def owner(quota_glance) -> Http:
    """A member of a fresh project: its storage is empty."""
    return Http(quota_glance.api_url)


def _raw(h: Http, **extra) -> str:
    return h.create_image(disk_format="raw", container_format="bare", **extra)["id"]


def _upload(h: Http, image_id: str, body, headers: dict | None = None):
    return h.put(f"/v2/images/{image_id}/file", data=body, headers={**OCTET, **(headers or {})})


def _image(h: Http, image_id: str) -> dict:
    return h.get(f"/v2/images/{image_id}").json()


def _assert_refused_and_clean(quota_glance, h: Http, image_id: str, resp) -> None:
    assert resp.status_code == 413, resp.text
    assert "quota" in resp.text
    image = _image(h, image_id)
    assert (image["status"], image["size"], image["checksum"]) == ("queued", None, None)
    assert image_files(quota_glance.datadir, image_id) == []


# -- user_storage_quota -------------------------------------------------------------------------------
def test_upload_within_quota(owner):
    image_id = _raw(owner)
    assert _upload(owner, image_id, os.urandom(STORAGE)).status_code == 204
    assert _image(owner, image_id)["size"] == STORAGE


def test_declared_size_over_quota_is_refused_before_reading(quota_glance, owner):
    image_id = _raw(owner)
    resp = _upload(owner, image_id, os.urandom(STORAGE + 1))
    _assert_refused_and_clean(quota_glance, owner, image_id, resp)


def test_chunked_upload_is_cut_at_the_remaining_quota(quota_glance, owner):
    first = _raw(owner)
    assert _upload(owner, first, os.urandom(60 * 1024)).status_code == 204
    second = _raw(owner)
    data = os.urandom(50 * 1024)
    resp = _upload(owner, second, iter([data[:20000], data[20000:]]))  # chunked: no declared size
    _assert_refused_and_clean(quota_glance, owner, second, resp)
    # what is left still fits, exactly
    assert _upload(owner, second, iter([os.urandom(40 * 1024)])).status_code == 204


def test_full_project_is_refused_and_deleting_frees_room(quota_glance, owner):
    full = _raw(owner)
    assert _upload(owner, full, os.urandom(STORAGE)).status_code == 204
    more = _raw(owner)
    _assert_refused_and_clean(quota_glance, owner, more, _upload(owner, more, b"x"))
    _assert_refused_and_clean(quota_glance, owner, more, _upload(owner, more, iter([b"x"])))
    assert owner.delete(f"/v2/images/{full}").status_code == 204
    assert _upload(owner, more, b"x").status_code == 204


def test_quota_is_per_project(quota_glance, owner):
    assert _upload(owner, _raw(owner), os.urandom(STORAGE)).status_code == 204
    other = owner.as_other()
    assert _upload(other, _raw(other), os.urandom(STORAGE)).status_code == 204


def test_admin_upload_counts_against_the_owner(quota_glance, owner):
    assert _upload(owner, _raw(owner), os.urandom(STORAGE)).status_code == 204
    admin = Http(quota_glance.api_url, roles="admin,member,reader")
    image_id = _raw(owner)
    _assert_refused_and_clean(quota_glance, owner, image_id, _upload(admin, image_id, b"x"))


# -- counts ------------------------------------------------------------------------------------------------
def test_member_quota(owner):
    image_id = owner.create_image(visibility="shared")["id"]
    for _ in range(2):
        member = owner.as_other().project
        assert owner.post(f"/v2/images/{image_id}/members", json={"member": member}).status_code == 200
    resp = owner.post(f"/v2/images/{image_id}/members", json={"member": owner.as_other().project})
    assert resp.status_code == 413 and "members" in resp.text
    assert len(owner.get(f"/v2/images/{image_id}/members").json()["members"]) == 2


def test_property_quota_on_create_and_patch(owner):
    resp = owner.post("/v2/images", json={"a": "1", "b": "2", "c": "3", "d": "4"})
    assert resp.status_code == 413 and "properties" in resp.text
    image = owner.create_image(a="1", b="2", c="3")
    path = f"/v2/images/{image['id']}"
    resp = owner.patch(path, [{"op": "add", "path": "/d", "value": "4"}])
    assert resp.status_code == 413
    # replacing or removing is fine at the limit
    assert owner.patch(path, [{"op": "replace", "path": "/a", "value": "9"}]).status_code == 200
    assert owner.patch(path, [{"op": "remove", "path": "/a"}]).status_code == 200
    assert owner.patch(path, [{"op": "add", "path": "/d", "value": "4"}]).status_code == 200


def test_tag_quota_on_create_put_and_patch(owner):
    resp = owner.post("/v2/images", json={"tags": ["a", "b", "c"]})
    assert resp.status_code == 413 and "tags" in resp.text
    image = owner.create_image(tags=["a", "b"])
    path = f"/v2/images/{image['id']}"
    assert owner.put(f"{path}/tags/c").status_code == 413
    assert owner.put(f"{path}/tags/a").status_code == 204  # already there: no new tag
    assert (
        owner.patch(path, [{"op": "replace", "path": "/tags", "value": ["a", "b", "c"]}]).status_code == 413
    )
    assert owner.get(path).json()["tags"] == ["a", "b"]


def test_location_quota(owner):
    image_id = _raw(owner)
    path = f"/v2/images/{image_id}"

    def add(url):
        return owner.patch(
            path, [{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}]
        )

    assert add("http://example.invalid/a.img").status_code == 200
    resp = add("http://example.invalid/b.img")
    assert resp.status_code == 413 and "locations" in resp.text
    assert len(owner.get(path).json()["locations"]) == 1
