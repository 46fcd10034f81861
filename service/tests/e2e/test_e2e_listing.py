"""Listing through the openstack CLI: the server-side filters it sends, and marker pagination."""

from __future__ import annotations

import secrets

import pytest

from tests.e2e.helpers import unique_name


@pytest.fixture(scope="module")
def group(glance):
    """Three images of project alpha sharing a unique tag; ``b`` is also tagged ``odd`` and has data."""
    conn = glance.keystone.connection("alpha-member")
    tag = "grp-" + secrets.token_hex(4)
    prefix = unique_name("list")
    images = {
        suffix: conn.image.create_image(
            name=f"{prefix}-{suffix}", disk_format="raw", container_format="bare", tags=[tag]
        )
        for suffix in ("a", "b", "c")
    }
    conn.image.add_tag(images["b"], "odd")
    put = conn.image.put(
        f"/images/{images['b'].id}/file",
        data=b"b" * 4096,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert put.status_code == 204, put.text
    yield {"tag": tag, "prefix": prefix, "ids": {k: v.id for k, v in images.items()}}
    for image in images.values():
        conn.image.delete_image(image, ignore_missing=True)


def names(rows: list[dict]) -> list[str]:
    return sorted(r["Name"] for r in rows)


def test_filters(cli, glance, group):
    p, tag = group["prefix"], group["tag"]
    # Project ids, not names: a member may not look projects up by name in Keystone.
    alpha = glance.keystone.connection("alpha-member").current_project_id
    beta = glance.keystone.connection("beta-member").current_project_id
    as_alpha = {"user": "alpha-member"}
    assert names(cli.openstack_json("image", "list", "--tag", tag, **as_alpha)) == [
        f"{p}-a",
        f"{p}-b",
        f"{p}-c",
    ]
    # Several tags: all of them must be present.
    assert names(cli.openstack_json("image", "list", "--tag", tag, "--tag", "odd", **as_alpha)) == [f"{p}-b"]
    assert names(cli.openstack_json("image", "list", "--name", f"{p}-c", **as_alpha)) == [f"{p}-c"]
    assert names(cli.openstack_json("image", "list", "--tag", tag, "--status", "active", **as_alpha)) == [
        f"{p}-b"
    ]
    queued = cli.openstack_json("image", "list", "--tag", tag, "--status", "queued", **as_alpha)
    assert names(queued) == [f"{p}-a", f"{p}-c"]
    assert len(cli.openstack_json("image", "list", "--tag", tag, "--project", alpha, **as_alpha)) == 3
    assert cli.openstack_json("image", "list", "--tag", tag, "--project", beta, **as_alpha) == []
    assert (
        len(cli.openstack_json("image", "list", "--tag", tag, "--private", **as_alpha)) == 0
    )  # default: shared
    # beta's users see none of alpha's non-public images.
    assert cli.openstack_json("image", "list", "--tag", tag, user="beta-member") == []


def test_long_listing_shows_hashes(cli, group):
    rows = cli.openstack_json(
        "image", "list", "--long", "--tag", group["tag"], "--tag", "odd", user="alpha-member"
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["Size"] == 4096
    assert row["Hash Algorithm"] == "sha512"
    assert len(row["Hash Value"]) == 128
    assert row["Status"] == "active"


def test_marker_pagination(cli, group):
    seen: list[str] = []
    marker: list[str] = []
    for _ in range(5):
        page = cli.openstack_json(
            "image", "list", "--tag", group["tag"], "--limit", "1", *marker, user="alpha-member"
        )
        if not page:
            break
        assert len(page) == 1
        seen.append(page[0]["ID"])
        marker = ["--marker", page[0]["ID"]]
    assert sorted(seen) == sorted(group["ids"].values()), "each image exactly once across the pages"


def test_hidden_images_are_listed_only_on_request(cli, glance, group):
    conn = glance.keystone.connection("alpha-member")
    hidden = group["ids"]["c"]
    conn.image.update_image(hidden, is_hidden=True)
    try:
        visible = cli.openstack_json("image", "list", "--tag", group["tag"], user="alpha-member")
        assert hidden not in [r["ID"] for r in visible] and len(visible) == 2
        only_hidden = cli.openstack_json(
            "image", "list", "--tag", group["tag"], "--hidden", user="alpha-member"
        )
        assert [r["ID"] for r in only_hidden] == [hidden]
    finally:
        conn.image.update_image(hidden, is_hidden=False)
