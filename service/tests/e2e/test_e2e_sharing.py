"""Sharing and the default policies with the ``openstack`` CLI and real Keystone users: alpha
shares with beta, beta accepts, community images, readers and --public refused."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.helpers import unique_name


def _project_id(glance, user: str) -> str:
    return glance.keystone.connection(user).current_project_id


def _listed(cli, user: str, *args: str) -> set[str]:
    return {row["ID"] for row in cli.openstack_json("image", "list", *args, user=user)}


@pytest.fixture
def alpha_image(cli, raw_file):
    """Factory: an active image of project alpha (made by alpha-member), deleted afterwards."""
    made: list[str] = []

    def make(visibility: str) -> dict:
        image = cli.openstack_json(
            "image", "create", "--file", str(raw_file(64 * 1024).path), "--disk-format", "raw",
            "--container-format", "bare", f"--{visibility}", unique_name(f"share-{visibility}"),
            user="alpha-member",
        )  # fmt: skip
        made.append(image["id"])
        assert image["visibility"] == visibility and image["status"] == "active"
        return image

    yield make
    for image_id in made:
        cli.openstack("image", "delete", image_id, user="alpha-member", check=False)


def test_share_accept_and_list(cli, glance, alpha_image):
    image = alpha_image("shared")
    beta = _project_id(glance, "beta-member")
    # not a member yet: beta does not see it at all
    assert cli.openstack("image", "show", image["id"], user="beta-member", check=False).returncode != 0

    member = cli.openstack_json("image", "add", "project", image["id"], beta, user="alpha-member")
    assert member["status"] == "pending"
    # pending: beta can reach it by id, but its default list shows accepted shares only
    assert cli.openstack_json("image", "show", image["id"], user="beta-member")["id"] == image["id"]
    assert image["id"] not in _listed(cli, "beta-member")

    # the owner cannot accept for beta; beta's reader cannot either
    assert cli.openstack("image", "set", "--accept", "--project", beta, image["id"],
                         user="alpha-member", check=False).returncode != 0  # fmt: skip
    assert (
        cli.openstack("image", "set", "--accept", image["id"], user="beta-reader", check=False).returncode
        != 0
    )

    cli.openstack("image", "set", "--accept", image["id"], user="beta-member")
    assert image["id"] in _listed(cli, "beta-member")
    members = cli.openstack_json("image", "member", "list", image["id"], user="alpha-member")
    assert [(m["Member ID"], m["Status"]) for m in members] == [(beta, "accepted")]

    cli.openstack("image", "set", "--reject", image["id"], user="beta-member")
    assert image["id"] not in _listed(cli, "beta-member")

    cli.openstack("image", "remove", "project", image["id"], beta, user="alpha-member")
    assert cli.openstack("image", "show", image["id"], user="beta-member", check=False).returncode != 0


def test_only_shared_images_take_members(cli, glance, alpha_image):
    image = alpha_image("private")
    beta = _project_id(glance, "beta-member")
    proc = cli.openstack("image", "add", "project", image["id"], beta, user="alpha-member", check=False)
    assert proc.returncode != 0
    assert "403" in proc.stderr or "Forbidden" in proc.stderr, proc.stderr


def test_community_image_listed_by_another_project_on_request(cli, alpha_image):
    image = alpha_image("community")
    assert image["id"] not in _listed(cli, "beta-member")
    assert image["id"] in _listed(cli, "beta-member", "--community")
    assert cli.openstack_json("image", "show", image["id"], user="beta-member")["visibility"] == "community"


def test_reader_cannot_download(cli, glance, alpha_image, tmp_path):
    image = alpha_image("private")
    out = tmp_path / "saved.raw"
    # the reader sees the image...
    assert cli.openstack_json("image", "show", image["id"], user="alpha-reader")["id"] == image["id"]
    # ...but download_image needs the member role. openstacksdk does not look at the status of
    # the data request: it hashes the 403's body and fails on the checksum, so the 403 itself
    # is checked with the reader's token below.
    proc = cli.openstack("image", "save", "--file", str(out), image["id"], user="alpha-reader", check=False)
    assert proc.returncode != 0
    resp = requests.get(
        f"{glance.url}/v2/images/{image['id']}/file",
        headers={"X-Auth-Token": glance.keystone.token("alpha-reader"), "Accept": "application/json"},
        timeout=60,
    )
    assert resp.status_code == 403, resp.text
    assert "download_image" in resp.json()["message"]
    # the member may
    cli.openstack("image", "save", "--file", str(out), image["id"], user="alpha-member")
    assert out.stat().st_size == 64 * 1024


def test_member_cannot_create_public_image(cli):
    name = unique_name("share-pub")
    proc = cli.openstack(
        "image", "create", "--disk-format", "raw", "--container-format", "bare", "--public", name,
        user="beta-member", check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "403" in proc.stderr or "Forbidden" in proc.stderr, proc.stderr
    assert name not in cli.openstack("image", "list", "--long", user="admin").stdout
