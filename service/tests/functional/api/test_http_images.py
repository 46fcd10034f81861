"""Create, show, delete, tags, actions: exact codes and headers."""

import uuid

import pytest

BASE_FIELDS = {
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "container_format",
    "disk_format",
    "min_disk",
    "min_ram",
    "tags",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
}


def test_create_defaults_and_headers(http):
    resp = http.post(
        "/v2/images", json={"name": "a", "disk_format": "qcow2", "container_format": "bare", "k": "v"}
    )
    assert resp.status_code == 201
    img = resp.json()
    assert resp.headers["Location"] == f"{http.base_url}/v2/images/{img['id']}"
    # Glance's default import methods are announced; a single store announces no store ids
    assert resp.headers["OpenStack-image-import-methods"] == "glance-direct,web-download,copy-image"
    assert "OpenStack-image-store-ids" not in resp.headers
    assert BASE_FIELDS <= set(img)
    assert img["status"] == "queued" and img["visibility"] == "shared" and img["owner"] == http.project
    assert img["protected"] is False and img["os_hidden"] is False and img["min_disk"] == 0
    assert img["size"] is None and img["checksum"] is None
    assert img["k"] == "v" and img["self"] == f"/v2/images/{img['id']}"
    assert img["file"] == f"/v2/images/{img['id']}/file" and img["schema"] == "/v2/schemas/image"
    assert img["created_at"].endswith("Z") and len(img["created_at"]) == 20
    assert "locations" not in img and "direct_url" not in img


def test_create_with_id_and_duplicate_409(http):
    image_id = str(uuid.uuid4())
    assert http.create_image(id=image_id)["id"] == image_id
    assert http.post("/v2/images", json={"id": image_id}).status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"self": "x"},
        {"file": "x"},
        {"schema": "x"},
        {"direct_url": "x"},
        {"stores": "x"},
        {"status": "active"},
        {"checksum": "0" * 32},
        {"size": 1},
        {"virtual_size": 1},
        {"created_at": "x"},
        {"updated_at": "x"},
        {"os_glance_foo": "x"},
        {"deleted": "x"},
        {"deleted_at": "x"},
        {"location": "x"},
        {"locations": []},
    ],
)
def test_create_reserved_or_read_only_is_403(http, body):
    assert http.post("/v2/images", json=body).status_code == 403


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"true", b'"hello"', b"123", b"[]", b"null"],
)
def test_create_bad_json_is_400(http, raw):
    resp = http.post("/v2/images", data=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"disk_format": "floppy"},
        {"container_format": "zip"},
        {"name": "n" * 256},
        {"visibility": "x"},
        {"min_ram": -1},
        {"min_disk": 2**31},
        {"foo": 1},
        {"kernel_id": "x"},
        {"id": "not-a-uuid"},
        {"k" * 256: "v"},
        {"tags": ["t" * 256]},
        {"protected": "yes"},
    ],
)
def test_create_invalid_is_400(http, body):
    assert http.post("/v2/images", json=body).status_code == 400


def test_create_for_other_project_is_403_unless_admin(http, admin):
    assert http.post("/v2/images", json={"owner": "someone-else"}).status_code == 403
    assert admin.post("/v2/images", json={"owner": "someone-else"}).status_code == 201


def test_public_needs_admin_community_does_not(http, admin):
    assert http.post("/v2/images", json={"visibility": "public"}).status_code == 403
    assert http.post("/v2/images", json={"visibility": "community"}).status_code == 201
    assert admin.post("/v2/images", json={"visibility": "public"}).status_code == 201


def test_reader_cannot_create(glance, http):
    reader = http.as_other(http.project, roles="reader")
    assert reader.post("/v2/images", json={}).status_code == 403


def test_show_and_visibility(http):
    img = http.create_image(visibility="private")
    assert http.get(f"/v2/images/{img['id']}").json() == img | {"updated_at": img["updated_at"]}
    assert http.as_other().get(f"/v2/images/{img['id']}").status_code == 404


@pytest.mark.parametrize("image_id", ["x", "0" * 37, "not-a-uuid-at-all", str(uuid.uuid4())])
def test_show_missing_or_non_uuid_is_404(http, image_id):
    assert http.get(f"/v2/images/{image_id}").status_code == 404


def test_delete(http):
    img = http.create_image()
    assert http.delete(f"/v2/images/{img['id']}").status_code == 204
    assert http.get(f"/v2/images/{img['id']}").status_code == 404
    assert http.delete(f"/v2/images/{img['id']}").status_code == 404


def test_delete_protected_is_403(http):
    img = http.create_image(protected=True)
    assert http.delete(f"/v2/images/{img['id']}").status_code == 403
    assert http.get(f"/v2/images/{img['id']}").status_code == 200


def test_delete_by_others(http):
    private = http.create_image(visibility="private")
    public_like = http.create_image(visibility="community")
    other = http.as_other()
    assert other.delete(f"/v2/images/{private['id']}").status_code == 404
    assert other.delete(f"/v2/images/{public_like['id']}").status_code == 403


def test_tags(http):
    img = http.create_image()
    url = f"/v2/images/{img['id']}/tags"
    assert http.put(f"{url}/b").status_code == 204
    assert http.put(f"{url}/a").status_code == 204
    assert http.put(f"{url}/a").status_code == 204
    assert http.get(f"/v2/images/{img['id']}").json()["tags"] == ["a", "b"]
    assert http.delete(f"{url}/a").status_code == 204
    assert http.delete(f"{url}/a").status_code == 404
    assert http.put(f"{url}/{'t' * 256}").status_code == 400
    assert http.put(f"/v2/images/{uuid.uuid4()}/tags/x").status_code == 404


def test_deactivate_reactivate_codes(http, admin):
    img = http.create_image()
    # queued: neither action is allowed
    assert http.post(f"/v2/images/{img['id']}/actions/deactivate").status_code == 403
    assert http.post(f"/v2/images/{img['id']}/actions/reactivate").status_code == 403
    assert http.post(f"/v2/images/{uuid.uuid4()}/actions/deactivate").status_code == 404
    assert http.as_other().post(f"/v2/images/{img['id']}/actions/deactivate").status_code == 404


def test_no_500_for_odd_input(http):
    img = http.create_image()
    odd = [
        ("POST", "/v2/images", {"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}),
        ("GET", "/v2/images?limit=%ff", {}),
        ("GET", "/v2/images?sort=%00", {}),
        ("GET", "/v2/images?created_at=gt:%ff", {}),
        (
            "PATCH",
            f"/v2/images/{img['id']}",
            {"data": b"[{]", "headers": {"Content-Type": "application/openstack-images-v2.1-json-patch"}},
        ),
        ("PUT", f"/v2/images/{img['id']}/tags/%ff%fe", {}),
        ("GET", "/v2/images/%ff", {}),
    ]
    for method, path, kw in odd:
        resp = http.request(method, path, **kw)
        assert resp.status_code < 500, (method, path, resp.status_code, resp.text)
