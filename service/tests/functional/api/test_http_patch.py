"""PATCH /v2/images/{id}: both media types, every rule's code."""

import pytest

V20 = "application/openstack-images-v2.0-json-patch"
V21 = "application/openstack-images-v2.1-json-patch"


@pytest.fixture
def img(http):
    return http.create_image(foo="bar")


def test_v21_replace_add_remove(http, img):
    resp = http.patch(
        f"/v2/images/{img['id']}",
        [
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": "/os_distro", "value": "debian"},
            {"op": "remove", "path": "/foo"},
            {"op": "replace", "path": "/tags", "value": ["b", "a"]},
            {"op": "replace", "path": "/disk_format", "value": "raw"},
        ],
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == "renamed" and body["os_distro"] == "debian" and "foo" not in body
    assert body["tags"] == ["a", "b"] and body["disk_format"] == "raw"
    assert http.get(f"/v2/images/{img['id']}").json() == body


def test_v20_media_type(http, img):
    resp = http.patch(
        f"/v2/images/{img['id']}", [{"replace": "/name", "value": "x"}, {"add": "/k", "value": "v"}], V20
    )
    assert resp.status_code == 200 and resp.json()["k"] == "v"
    assert http.patch(f"/v2/images/{img['id']}", [{"add": "/k", "value": "w"}], V20).status_code == 409
    assert (
        http.patch(f"/v2/images/{img['id']}", [{"op": "add", "path": "/k", "value": "w"}], V21).status_code
        == 200
    )


def test_415_with_accept_patch(http, img):
    for media in ("application/json", "application/json-patch+json"):
        resp = http.patch(f"/v2/images/{img['id']}", [], media)
        assert resp.status_code == 415
        assert resp.headers["Accept-Patch"] == f"{V20}, {V21}"


@pytest.mark.parametrize(
    "ops,code",
    [
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "replace", "path": "/size", "value": 1}], 403),
        ([{"op": "add", "path": "/self", "value": "x"}], 403),
        ([{"op": "add", "path": "/os_glance_x", "value": "x"}], 403),
        ([{"op": "add", "path": "/deleted", "value": "x"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "replace", "path": "/owner", "value": "elsewhere"}], 403),
        ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
        ([{"op": "replace", "path": "/nope", "value": "x"}], 409),
        ([{"op": "remove", "path": "/nope"}], 409),
        ([{"op": "add", "path": "/locations/-", "value": {"url": "http://x/y", "metadata": {}}}], 403),
        ([{"op": "replace", "path": "/name", "value": "n" * 256}], 400),
        ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], 400),
        ([{"op": "add", "path": "/k", "value": 1}], 400),
        ([{"op": "add", "path": "/a/b", "value": "x"}], 400),
        ([{"op": "add", "path": "k", "value": "x"}], 400),
        ([{"op": "move", "path": "/k", "value": "x"}], 400),
        ([{"path": "/k", "value": "x"}], 400),
        ([{"op": "add", "path": "/k"}], 400),
        ({"op": "add", "path": "/k", "value": "x"}, 400),
        (["add"], 400),
        ([{"op": "replace", "path": "/min_ram", "value": -5}], 400),
    ],
)
def test_rule_codes(http, img, ops, code):
    resp = http.patch(f"/v2/images/{img['id']}", ops)
    assert resp.status_code == code, resp.text


def test_malformed_json_is_400(http, img):
    resp = http.request("PATCH", f"/v2/images/{img['id']}", data=b"[{", headers={"Content-Type": V21})
    assert resp.status_code == 400


def test_community_allowed_for_owner(http, img):
    resp = http.patch(
        f"/v2/images/{img['id']}", [{"op": "replace", "path": "/visibility", "value": "community"}]
    )
    assert resp.status_code == 200 and resp.json()["visibility"] == "community"


def test_admin_may_publicize_and_move(admin, http, img):
    path = f"/v2/images/{img['id']}"
    assert admin.patch(path, [{"op": "replace", "path": "/visibility", "value": "public"}]).status_code == 200
    assert admin.patch(path, [{"op": "replace", "path": "/owner", "value": "p2"}]).json()["owner"] == "p2"


def test_others_get_404_or_403(http):
    img = http.create_image(visibility="community")
    other = http.as_other()
    assert (
        other.patch(f"/v2/images/{img['id']}", [{"op": "add", "path": "/a", "value": "b"}]).status_code == 403
    )
    private = http.create_image(visibility="private")
    assert (
        other.patch(f"/v2/images/{private['id']}", [{"op": "add", "path": "/a", "value": "b"}]).status_code
        == 404
    )


def test_reader_cannot_patch(http, img):
    reader = http.as_other(http.project, roles="reader")
    assert (
        reader.patch(f"/v2/images/{img['id']}", [{"op": "add", "path": "/a", "value": "b"}]).status_code
        == 403
    )


def test_patch_missing_image_is_404(http):
    assert http.patch("/v2/images/00000000-0000-0000-0000-000000000000", []).status_code == 404


def test_empty_patch_returns_image(http, img):
    resp = http.patch(f"/v2/images/{img['id']}", [])
    assert resp.status_code == 200 and resp.json()["id"] == img["id"]
