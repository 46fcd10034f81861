"""Members API against real processes: every endpoint's codes, who may do what (reference
1.7, 4.2), and what sharing changes in the image list (reference 4.1)."""

from __future__ import annotations

import uuid

import pytest


def _members(image_id: str, member: str | None = None) -> str:
    path = f"/v2/images/{image_id}/members"
    return path if member is None else f"{path}/{member}"


@pytest.fixture
def shared(http):
    """A shared image of ``http``'s project."""
    return http.create_image(visibility="shared")


@pytest.fixture
def other(http):
    """A member of another project (the one the image gets shared with)."""
    return http.as_other()


def _add(http, image_id: str, member: str) -> dict:
    resp = http.post(_members(image_id), json={"member": member})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _ids(http, query: str = "") -> set[str]:
    resp = http.get("/v2/images" + query)
    assert resp.status_code == 200, resp.text
    return {image["id"] for image in resp.json()["images"]}


# -- create -----------------------------------------------------------------------------------------
def test_create_returns_200_and_member_json(http, shared, other):
    resp = http.post(_members(shared["id"]), json={"member": other.project})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"member_id", "image_id", "status", "created_at", "updated_at", "schema"}
    assert body["member_id"] == other.project and body["image_id"] == shared["id"]
    assert body["status"] == "pending" and body["schema"] == "/v2/schemas/member"
    for key in ("created_at", "updated_at"):
        assert body[key].endswith("Z") and len(body[key]) == 20


def test_create_duplicate_is_409(http, shared, other):
    _add(http, shared["id"], other.project)
    assert http.post(_members(shared["id"]), json={"member": other.project}).status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"member": ""},
        {"member": "   "},
        {"member": 12},
        {"member": None},
        [],
        {"other": "x"},
        {"member": "x" * 256},
    ],
)
def test_create_bad_body_is_400(http, shared, body):
    assert http.post(_members(shared["id"]), json=body).status_code == 400


def test_create_without_body_or_malformed_is_400(http, shared):
    assert http.post(_members(shared["id"])).status_code == 400
    resp = http.post(_members(shared["id"]), data=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400


@pytest.mark.parametrize("visibility", ["private", "public", "community"])
def test_members_of_non_shared_images_are_403(http, admin, other, visibility):
    owner = admin if visibility == "public" else http
    image = owner.create_image(visibility=visibility)
    resp = owner.post(_members(image["id"]), json={"member": other.project})
    assert resp.status_code == 403
    assert "Only shared images have members." in resp.text
    listed = owner.get(_members(image["id"]))
    assert listed.status_code == 403
    # upstream Glance 33's wording for a refused list (found by molecule/adopt's comparison)
    assert (
        f"Not allowed to list members for image {image['id']}: Only shared images have members."
        in listed.text
    )
    assert owner.delete(_members(image["id"], other.project)).status_code == 403
    assert owner.put(_members(image["id"], other.project), json={"status": "accepted"}).status_code == 403
    # show hides every refusal behind 404
    assert owner.get(_members(image["id"], other.project)).status_code == 404


def test_only_the_owner_adds_members(http, shared, other):
    _add(http, shared["id"], other.project)
    third = http.as_other()
    # the member sees the image but add_member is the owner's: 403
    assert other.post(_members(shared["id"]), json={"member": third.project}).status_code == 403
    # a project that is not a member does not see the image at all: 404
    assert third.post(_members(shared["id"]), json={"member": third.project}).status_code == 404
    # a reader of the owner's project cannot share
    reader = http.as_other(project=http.project, roles="reader")
    assert reader.post(_members(shared["id"]), json={"member": third.project}).status_code == 403


def test_unknown_image_is_404(http):
    missing = str(uuid.uuid4())
    assert http.post(_members(missing), json={"member": "x"}).status_code == 404
    assert http.get(_members(missing)).status_code == 404
    assert http.get(_members(missing, "x")).status_code == 404
    assert http.put(_members(missing, "x"), json={"status": "accepted"}).status_code == 404
    assert http.delete(_members(missing, "x")).status_code == 404


def test_admin_adds_members_to_any_shared_image(http, admin, shared, other):
    resp = admin.post(_members(shared["id"]), json={"member": other.project})
    assert resp.status_code == 200
    assert [m["member_id"] for m in http.get(_members(shared["id"])).json()["members"]] == [other.project]


# -- list and show ------------------------------------------------------------------------------------
def test_owner_lists_all_members_member_only_its_own(http, shared, other):
    third = http.as_other()
    _add(http, shared["id"], other.project)
    _add(http, shared["id"], third.project)
    resp = http.get(_members(shared["id"]))
    assert resp.status_code == 200
    body = resp.json()
    assert body["schema"] == "/v2/schemas/members"
    assert sorted(m["member_id"] for m in body["members"]) == sorted([other.project, third.project])
    mine = other.get(_members(shared["id"])).json()["members"]
    assert [m["member_id"] for m in mine] == [other.project]
    # a stranger: the image does not exist for it
    assert http.as_other().get(_members(shared["id"])).status_code == 404


def test_empty_member_list(http, shared):
    assert http.get(_members(shared["id"])).json() == {"members": [], "schema": "/v2/schemas/members"}


def test_show_member(http, shared, other):
    third = http.as_other()
    _add(http, shared["id"], other.project)
    _add(http, shared["id"], third.project)
    resp = http.get(_members(shared["id"], other.project))
    assert resp.status_code == 200 and resp.json()["member_id"] == other.project
    assert other.get(_members(shared["id"], other.project)).status_code == 200
    # every denial is a 404: another member's row, an unknown member, a stranger
    assert other.get(_members(shared["id"], third.project)).status_code == 404
    assert http.get(_members(shared["id"], "nobody")).status_code == 404
    assert http.as_other().get(_members(shared["id"], other.project)).status_code == 404


def test_list_and_show_reject_a_body(http, shared, other):
    _add(http, shared["id"], other.project)
    assert http.get(_members(shared["id"]), data=b"{}").status_code == 400
    assert http.get(_members(shared["id"], other.project), data=b"{}").status_code == 400


def test_unsupported_methods_are_405(http, shared):
    resp = http.put(_members(shared["id"]), json={})
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, POST"
    resp = http.post(_members(shared["id"], "x"), json={})
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, PUT, DELETE"


# -- update status -------------------------------------------------------------------------------------
def test_member_accepts_and_rejects(http, shared, other):
    _add(http, shared["id"], other.project)
    for status in ("accepted", "rejected", "pending", "accepted"):
        resp = other.put(_members(shared["id"], other.project), json={"status": status})
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == status and resp.json()["member_id"] == other.project
    assert http.get(_members(shared["id"], other.project)).json()["status"] == "accepted"


def test_owner_cannot_change_member_status(http, shared, other):
    _add(http, shared["id"], other.project)
    resp = http.put(_members(shared["id"], other.project), json={"status": "accepted"})
    assert resp.status_code == 403
    assert http.get(_members(shared["id"], other.project)).json()["status"] == "pending"


def test_member_cannot_change_another_members_status(http, shared, other):
    third = http.as_other()
    _add(http, shared["id"], other.project)
    _add(http, shared["id"], third.project)
    assert other.put(_members(shared["id"], third.project), json={"status": "accepted"}).status_code == 404


def test_reader_of_member_project_cannot_accept(http, shared, other):
    _add(http, shared["id"], other.project)
    reader = http.as_other(project=other.project, roles="reader")
    assert reader.put(_members(shared["id"], other.project), json={"status": "accepted"}).status_code == 403
    # but it may read its membership
    assert reader.get(_members(shared["id"], other.project)).status_code == 200


@pytest.mark.parametrize("body", [{}, {"status": "maybe"}, {"status": None}, {"status": 1}, ["accepted"]])
def test_bad_status_is_400(http, shared, other, body):
    _add(http, shared["id"], other.project)
    assert other.put(_members(shared["id"], other.project), json=body).status_code == 400


# -- delete ----------------------------------------------------------------------------------------------
def test_owner_deletes_member(http, shared, other):
    _add(http, shared["id"], other.project)
    resp = http.delete(_members(shared["id"], other.project))
    assert resp.status_code == 204 and resp.content == b""
    assert http.get(_members(shared["id"])).json()["members"] == []
    assert other.get(f"/v2/images/{shared['id']}").status_code == 404
    assert http.delete(_members(shared["id"], other.project)).status_code == 404
    # re-adding starts over as pending
    assert _add(http, shared["id"], other.project)["status"] == "pending"


def test_member_cannot_delete_its_membership(http, shared, other):
    _add(http, shared["id"], other.project)
    assert other.delete(_members(shared["id"], other.project)).status_code == 403


# -- what sharing does to visibility ----------------------------------------------------------------------
def test_member_sees_shared_image_in_any_status(http, shared, other):
    assert other.get(f"/v2/images/{shared['id']}").status_code == 404
    _add(http, shared["id"], other.project)
    for status in ("pending", "rejected", "accepted"):
        if status != "pending":
            other.put(_members(shared["id"], other.project), json={"status": status})
        assert other.get(f"/v2/images/{shared['id']}").status_code == 200


def test_list_shows_accepted_shares_only_by_default(http, shared, other):
    _add(http, shared["id"], other.project)
    image_id = shared["id"]
    assert image_id not in _ids(other)
    assert image_id in _ids(other, "?member_status=pending")
    assert image_id in _ids(other, "?visibility=shared&member_status=pending")
    assert image_id in _ids(other, "?member_status=all")
    assert image_id not in _ids(other, "?member_status=accepted")

    other.put(_members(image_id, other.project), json={"status": "accepted"})
    assert image_id in _ids(other)
    assert image_id in _ids(other, "?visibility=shared")
    assert image_id not in _ids(other, "?member_status=pending")

    other.put(_members(image_id, other.project), json={"status": "rejected"})
    assert image_id not in _ids(other)
    assert image_id in _ids(other, "?member_status=rejected")
    assert image_id in _ids(other, "?member_status=all")
    # the owner's list is not about membership
    assert image_id in _ids(http)


def test_private_image_with_member_rows_stays_hidden(http, shared, other):
    _add(http, shared["id"], other.project)
    other.put(_members(shared["id"], other.project), json={"status": "accepted"})
    resp = http.patch(
        f"/v2/images/{shared['id']}", [{"op": "replace", "path": "/visibility", "value": "private"}]
    )
    assert resp.status_code == 200, resp.text
    assert other.get(f"/v2/images/{shared['id']}").status_code == 404
    assert shared["id"] not in _ids(other, "?member_status=all")


def test_community_images_listed_for_others_only_on_request(http, other):
    image = http.create_image(visibility="community")
    assert image["id"] in _ids(http)  # the owner's own
    assert image["id"] not in _ids(other)
    assert image["id"] in _ids(other, "?visibility=community")
    assert other.get(f"/v2/images/{image['id']}").status_code == 200


def test_private_images_are_404_for_others(http, other):
    image = http.create_image(visibility="private")
    assert other.get(f"/v2/images/{image['id']}").status_code == 404
    assert image["id"] not in _ids(other, "?visibility=private")
    assert image["id"] in _ids(http, "?visibility=private")


def test_visibility_all_lists_other_projects_community_images(http, other):
    """Upstream Glance 33: without a visibility filter another project's community images are
    left out; with visibility=all they are listed (molecule/adopt found the difference)."""
    image = other.create_image(visibility="community")
    listed = [i["id"] for i in http.get("/v2/images?visibility=all").json()["images"]]
    assert image["id"] in listed
    default = [i["id"] for i in http.get("/v2/images").json()["images"]]
    assert image["id"] not in default
