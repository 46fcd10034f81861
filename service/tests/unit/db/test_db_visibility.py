"""Who sees which image (reference section 4.1), for single gets and for lists."""

from __future__ import annotations

import pytest

from glance_service import exceptions


@pytest.fixture
def world(dbapi, admin, alice, bob):
    """Images of alpha (alice) and beta (bob); alice is a member of some of beta's shared ones."""

    def make(name, owner_ctx, visibility, **extra):
        return dbapi.image_create(owner_ctx, {"name": name, "visibility": visibility, **extra})["id"]

    ids = {
        "pub_a": make("pub_a", alice, "public"),
        "comm_a": make("comm_a", alice, "community"),
        "comm_b": make("comm_b", bob, "community"),
        "priv_a": make("priv_a", alice, "private"),
        "priv_b": make("priv_b", bob, "private"),
        "shared_a": make("shared_a", alice, "shared"),
        "sh_acc": make("sh_acc", bob, "shared"),
        "sh_pend": make("sh_pend", bob, "shared"),
        "sh_rej": make("sh_rej", bob, "shared"),
        "sh_none": make("sh_none", bob, "shared"),
        "priv_b_member": make("priv_b_member", bob, "private"),
        "killed_a": make("killed_a", alice, "private", status="killed"),
        "hidden_a": make("hidden_a", alice, "public", os_hidden=True),
        "deleted_a": make("deleted_a", alice, "public"),
    }
    for key, status in (("sh_acc", "accepted"), ("sh_pend", "pending"), ("sh_rej", "rejected")):
        dbapi.image_member_create(bob, ids[key], "alpha")
        if status != "pending":
            dbapi.image_member_update(alice, ids[key], "alpha", status)
    # A member row on a private image grants nothing.
    dbapi.image_member_create(bob, ids["priv_b_member"], "alpha")
    dbapi.image_destroy(alice, ids["deleted_a"])
    return ids


def names(images):
    return sorted(i["name"] for i in images)


@pytest.mark.parametrize(
    ("viewer", "image", "visible"),
    [
        ("alice", "pub_a", True),
        ("alice", "priv_a", True),
        ("alice", "priv_b", False),
        ("alice", "comm_b", True),
        ("alice", "sh_acc", True),
        ("alice", "sh_pend", True),
        ("alice", "sh_rej", True),
        ("alice", "sh_none", False),
        ("alice", "priv_b_member", False),
        ("alice", "killed_a", True),
        ("alice", "hidden_a", True),
        ("alice", "deleted_a", False),
        ("bob", "priv_a", False),
        ("bob", "shared_a", False),
        ("bob", "sh_none", True),
        ("carol", "pub_a", True),
        ("carol", "comm_a", True),
        ("carol", "sh_acc", False),
        ("carol", "priv_b", False),
        ("admin", "priv_a", True),
        ("admin", "sh_none", True),
        ("admin", "killed_a", True),
        ("admin", "deleted_a", False),
    ],
)
def test_image_get_visibility(dbapi, world, request, viewer, image, visible):
    ctx = request.getfixturevalue(viewer)
    if visible:
        assert dbapi.image_get(ctx, world[image])["id"] == world[image]
    else:
        with pytest.raises(exceptions.ImageNotFound):
            dbapi.image_get(ctx, world[image])


def test_not_visible_is_not_found_for_every_call(dbapi, world, bob, admin):
    hidden = world["priv_a"]
    calls = [
        lambda: dbapi.image_update(bob, hidden, {"name": "x"}),
        lambda: dbapi.image_destroy(bob, hidden),
        lambda: dbapi.image_tag_create(bob, hidden, "t"),
        lambda: dbapi.image_location_add(bob, hidden, "file:///x"),
        lambda: dbapi.image_member_find(bob, hidden),
        lambda: dbapi.image_member_create(bob, hidden, "beta"),
    ]
    for call in calls:
        with pytest.raises(exceptions.ImageNotFound):
            call()
    # and nothing changed
    assert dbapi.image_get(admin, hidden)["name"] == "priv_a"


def test_include_deleted(dbapi, world, alice):
    record = dbapi.image_get(alice, world["deleted_a"], include_deleted=True)
    assert record["deleted"] is True and record["status"] == "deleted" and record["deleted_at"]


def test_ids_not_36_long_are_not_found(dbapi, admin):
    image = dbapi.image_create(admin, {"name": "x"})
    for bad in (image["id"][:-1], image["id"] + "0", "", "x" * 37):
        with pytest.raises(exceptions.ImageNotFound):
            dbapi.image_get(admin, bad)


def test_list_default_for_owner_and_member(dbapi, world, alice):
    assert names(dbapi.image_get_all(alice)) == ["comm_a", "priv_a", "pub_a", "sh_acc", "shared_a"]


def test_list_default_for_unrelated_project(dbapi, world, carol):
    assert names(dbapi.image_get_all(carol)) == ["pub_a"]


def test_list_for_owner_of_shared_images(dbapi, world, bob):
    assert names(dbapi.image_get_all(bob)) == [
        "comm_b",
        "priv_b",
        "priv_b_member",
        "pub_a",
        "sh_acc",
        "sh_none",
        "sh_pend",
        "sh_rej",
    ]


def test_list_admin_sees_all_but_others_community(dbapi, world, admin):
    assert names(dbapi.image_get_all(admin)) == [
        "priv_a",
        "priv_b",
        "priv_b_member",
        "pub_a",
        "sh_acc",
        "sh_none",
        "sh_pend",
        "sh_rej",
        "shared_a",
    ]
    assert names(dbapi.image_get_all(admin, {"visibility": "community"})) == ["comm_a", "comm_b"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"visibility": "community"}, ["comm_a", "comm_b"]),
        ({"visibility": "private"}, ["priv_a"]),
        ({"visibility": "public"}, ["pub_a"]),
        ({"visibility": "shared"}, ["sh_acc", "shared_a"]),
        ({"visibility": "shared", "member_status": "pending"}, ["sh_pend", "shared_a"]),
        ({"visibility": "shared", "member_status": "rejected"}, ["sh_rej", "shared_a"]),
        ({"visibility": "shared", "member_status": "all"}, ["sh_acc", "sh_pend", "sh_rej", "shared_a"]),
        ({"member_status": "pending"}, ["comm_a", "priv_a", "pub_a", "sh_pend", "shared_a"]),
        ({"os_hidden": True}, ["hidden_a"]),
    ],
)
def test_list_filters_on_visibility(dbapi, world, alice, filters, expected):
    assert names(dbapi.image_get_all(alice, filters)) == expected


def test_killed_and_deleted_never_listed(dbapi, world, admin):
    listed = names(dbapi.image_get_all(admin, {"visibility": "private"}))
    assert "killed_a" not in listed and "deleted_a" not in listed
    by_status = dbapi.image_get_all(admin, {"conditions": [("status", "eq", "killed")]})
    assert by_status == []


def test_member_find_owner_sees_all_member_sees_own(dbapi, world, alice, bob, carol, admin):
    image = world["sh_acc"]
    dbapi.image_member_create(bob, image, "gamma")
    assert sorted(m["member"] for m in dbapi.image_member_find(bob, image)) == ["alpha", "gamma"]
    assert sorted(m["member"] for m in dbapi.image_member_find(admin, image)) == ["alpha", "gamma"]
    assert [m["member"] for m in dbapi.image_member_find(alice, image)] == ["alpha"]
    assert [m["member"] for m in dbapi.image_member_find(carol, image)] == ["gamma"]
    assert dbapi.image_member_find(bob, image, member="gamma")[0]["status"] == "pending"
