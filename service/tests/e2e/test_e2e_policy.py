"""Glance's default policies with real Keystone roles (reference 4.3).

The image belongs to project alpha (made by alpha-member). alpha-reader may list and show it but
not write, upload or download; beta's users do not see it at all (404, never 403).
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.e2e.helpers import unique_name

PATCH = "application/openstack-images-v2.1-json-patch"
ADD_K = json.dumps([{"op": "add", "path": "/k", "value": "v"}])


class Api:
    def __init__(self, glance, user: str):
        self.base = f"{glance.url}/v2"
        self.headers = {"X-Auth-Token": glance.keystone.token(user)}

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = self.headers | kwargs.pop("headers", {})
        return requests.request(method, self.base + path, headers=headers, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def alpha_image(glance):
    member = Api(glance, "alpha-member")
    body = {
        "name": unique_name("policy"),
        "disk_format": "raw",
        "container_format": "bare",
        "visibility": "private",
    }
    resp = member.call("POST", "/images", json=body)
    assert resp.status_code == 201, resp.text
    image = resp.json()
    put = member.call("PUT", f"/images/{image['id']}/file", data=b"x" * 1024,
                      headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert put.status_code == 204, put.text
    queued = member.call("POST", "/images", json={"name": unique_name("policy-q"), "disk_format": "raw",
                                                  "container_format": "bare"})  # fmt: skip
    assert queued.status_code == 201, queued.text
    yield {"active": image["id"], "queued": queued.json()["id"]}
    for image_id in (image["id"], queued.json()["id"]):
        member.call("DELETE", f"/images/{image_id}")


def test_reader_can_list_and_show(glance, alpha_image):
    reader = Api(glance, "alpha-reader")
    listed = reader.call("GET", "/images")
    assert listed.status_code == 200, listed.text
    assert alpha_image["active"] in [i["id"] for i in listed.json()["images"]]
    shown = reader.call("GET", f"/images/{alpha_image['active']}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["status"] == "active"


@pytest.mark.parametrize(
    ("what", "method", "path", "kwargs"),
    [
        ("create", "POST", "/images", {"json": {"name": "reader-made", "disk_format": "raw"}}),
        ("upload", "PUT", "/images/{queued}/file",
         {"data": b"y" * 10, "headers": {"Content-Type": "application/octet-stream"}}),
        ("download", "GET", "/images/{active}/file", {}),
        ("update", "PATCH", "/images/{active}",
         {"data": ADD_K, "headers": {"Content-Type": PATCH}}),
        ("tag", "PUT", "/images/{active}/tags/reader", {}),
        ("deactivate", "POST", "/images/{active}/actions/deactivate", {}),
        ("delete", "DELETE", "/images/{active}", {}),
    ],
)  # fmt: skip
def test_reader_is_refused_writes_and_download(glance, alpha_image, what, method, path, kwargs):
    reader = Api(glance, "alpha-reader")
    resp = reader.call(method, path.format(**alpha_image), **kwargs)
    assert resp.status_code == 403, f"reader {what}: {resp.status_code} {resp.text[:300]}"
    # ...and nothing changed.
    image = Api(glance, "alpha-member").call("GET", f"/images/{alpha_image['active']}").json()
    assert image["status"] == "active"
    assert "k" not in image and "reader" not in image["tags"]


def test_other_project_sees_404_not_403(glance, alpha_image):
    for user in ("beta-member", "beta-reader"):
        other = Api(glance, user)
        assert other.call("GET", f"/images/{alpha_image['active']}").status_code == 404
        assert other.call("GET", f"/images/{alpha_image['active']}/file").status_code == 404
        assert other.call("DELETE", f"/images/{alpha_image['active']}").status_code == 404
        assert alpha_image["active"] not in [i["id"] for i in other.call("GET", "/images").json()["images"]]


def test_member_cannot_create_for_another_project(glance):
    beta_id = glance.keystone.connection("beta-member").current_project_id
    resp = Api(glance, "alpha-member").call(
        "POST",
        "/images",
        json={"name": "foreign", "disk_format": "raw", "container_format": "bare", "owner": beta_id},
    )
    assert resp.status_code == 403, resp.text


def test_admin_sees_every_project(glance, alpha_image):
    admin = Api(glance, "admin")
    assert admin.call("GET", f"/images/{alpha_image['active']}").status_code == 200
    assert alpha_image["active"] in [
        i["id"] for i in admin.call("GET", "/images?limit=1000").json()["images"]
    ]
