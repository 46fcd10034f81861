"""With show_multiple_locations: location PATCH ops, activation, deactivate/reactivate."""

import pytest

from tests.fixtures.glance_procs import start_glance
from tests.functional.conftest import Http


@pytest.fixture(scope="module")
def loc_glance(tmp_path_factory):
    procs = start_glance(
        tmp_path_factory.mktemp("glance-locations"),
        extra_api={"DEFAULT": {"show_multiple_locations": "true", "show_image_direct_url": "true"}},
        workers=1,
    )
    yield procs
    procs.stop()


@pytest.fixture
def owner(loc_glance):
    return Http(loc_glance.api_url)


@pytest.fixture
def admin(loc_glance):
    return Http(loc_glance.api_url, roles="admin,member,reader")


def add_location(h, image_id, url="http://example.invalid/a.img"):
    return h.patch(
        f"/v2/images/{image_id}",
        [{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}],
    )


def test_locations_shown_and_add_activates(owner):
    img = owner.create_image(disk_format="raw", container_format="bare")
    assert img["locations"] == [] and "direct_url" not in img
    resp = add_location(owner, img["id"])
    assert resp.status_code == 200, resp.text
    body = owner.get(f"/v2/images/{img['id']}").json()
    assert body["status"] == "active"
    assert body["locations"] == [{"url": "http://example.invalid/a.img", "metadata": {}}]
    assert body["direct_url"] == "http://example.invalid/a.img"


def test_add_location_needs_formats(owner):
    img = owner.create_image()
    assert add_location(owner, img["id"]).status_code == 400


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/y", "nonsense"])
def test_bad_location_scheme_is_400(owner, url):
    img = owner.create_image(disk_format="raw", container_format="bare")
    assert add_location(owner, img["id"], url).status_code == 400


def test_remove_rules(owner, admin):
    img = owner.create_image(disk_format="raw", container_format="bare")
    add_location(owner, img["id"], "http://example.invalid/1")
    add_location(owner, img["id"], "http://example.invalid/2")
    path = f"/v2/images/{img['id']}"
    assert owner.patch(path, [{"op": "remove", "path": "/locations/0"}]).status_code == 403  # admin only
    resp = admin.patch(path, [{"op": "remove", "path": "/locations/0"}])
    assert resp.status_code == 200 and [loc["url"] for loc in resp.json()["locations"]] == [
        "http://example.invalid/2"
    ]
    assert admin.patch(path, [{"op": "remove", "path": "/locations/0"}]).status_code == 403  # the last one


def test_replace_metadata_only(owner):
    img = owner.create_image(disk_format="raw", container_format="bare")
    add_location(owner, img["id"], "http://example.invalid/1")
    path = f"/v2/images/{img['id']}"
    ok = owner.patch(
        path,
        [
            {
                "op": "replace",
                "path": "/locations",
                "value": [{"url": "http://example.invalid/1", "metadata": {"a": "b"}}],
            }
        ],
    )
    assert ok.status_code == 200 and ok.json()["locations"][0]["metadata"] == {"a": "b"}
    bad = owner.patch(
        path,
        [
            {
                "op": "replace",
                "path": "/locations",
                "value": [{"url": "http://example.invalid/9", "metadata": {}}],
            }
        ],
    )
    assert bad.status_code == 400
    assert owner.patch(path, [{"op": "replace", "path": "/locations", "value": []}]).status_code == 403


def test_deactivate_reactivate(owner, admin):
    img = owner.create_image(disk_format="raw", container_format="bare")
    add_location(owner, img["id"])
    base = f"/v2/images/{img['id']}/actions"
    reader = owner.as_other(owner.project, roles="reader")
    assert reader.post(f"{base}/deactivate").status_code == 403
    assert owner.post(f"{base}/deactivate").status_code == 204
    assert owner.get(f"/v2/images/{img['id']}").json()["status"] == "deactivated"
    assert owner.post(f"{base}/deactivate").status_code == 204  # no-op
    # as upstream: a deactivated image shows no locations (nor direct_url) but to an admin
    shown = owner.get(f"/v2/images/{img['id']}").json()
    assert shown["locations"] == [] and "direct_url" not in shown
    listed = [i for i in owner.get("/v2/images").json()["images"] if i["id"] == img["id"]]
    assert listed[0]["locations"] == []
    assert (
        admin.get(f"/v2/images/{img['id']}").json()["locations"][0]["url"] == "http://example.invalid/a.img"
    )
    assert owner.post(f"{base}/reactivate").status_code == 204
    assert owner.get(f"/v2/images/{img['id']}").json()["direct_url"] == "http://example.invalid/a.img"
    assert owner.get(f"/v2/images/{img['id']}").json()["status"] == "active"
    assert owner.post(f"{base}/reactivate").status_code == 204  # no-op
    assert owner.as_other().post(f"{base}/deactivate").status_code == 404


def test_format_change_after_activation_is_403(owner):
    img = owner.create_image(disk_format="raw", container_format="bare")
    add_location(owner, img["id"])
    resp = owner.patch(
        f"/v2/images/{img['id']}", [{"op": "replace", "path": "/disk_format", "value": "qcow2"}]
    )
    assert resp.status_code == 403


def test_delete_with_external_location(owner):
    img = owner.create_image(disk_format="raw", container_format="bare")
    add_location(owner, img["id"])
    assert owner.delete(f"/v2/images/{img['id']}").status_code == 204
    assert owner.get(f"/v2/images/{img['id']}").status_code == 404
