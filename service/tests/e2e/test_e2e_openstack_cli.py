"""The ``openstack`` CLI (python-openstackclient over openstacksdk), unmodified, against Keystone."""

from __future__ import annotations

import hashlib

import pytest

from tests.e2e.helpers import unique_name


def image_field(image: dict, key: str):
    """OSC prints some server fields (os_hash_*) under ``properties``: accept either place."""
    if key in image:
        return image[key]
    return (image.get("properties") or {}).get(key)


def assert_uploaded(image: dict, expected) -> None:
    assert image["status"] == "active"
    assert image["checksum"] == expected.md5
    assert image_field(image, "os_hash_algo") == "sha512"
    assert image_field(image, "os_hash_value") == expected.sha512
    assert int(image["size"]) == expected.size


def test_image_lifecycle(cli, qcow2_file, tmp_path):
    name = unique_name("osc")
    created = cli.openstack_json(
        "image", "create", "--file", str(qcow2_file.path),
        "--disk-format", "qcow2", "--container-format", "bare", "--public", name,
    )  # fmt: skip
    assert_uploaded(created, qcow2_file)
    assert created["visibility"] == "public"
    assert created["disk_format"] == "qcow2"
    assert created["container_format"] == "bare"
    assert created["name"] == name
    image_id = created["id"]

    listed = cli.openstack_json("image", "list")
    assert {"ID": image_id, "Name": name, "Status": "active"} in listed

    shown = cli.openstack_json("image", "show", image_id)
    assert_uploaded(shown, qcow2_file)
    assert shown["id"] == image_id

    cli.openstack(
        "image", "set", "--property", "e2e_key=e2e value", "--property", "os_distro=debian", image_id
    )
    shown = cli.openstack_json("image", "show", image_id)
    assert shown["properties"]["e2e_key"] == "e2e value"
    assert shown["properties"]["os_distro"] == "debian"
    assert shown["checksum"] == qcow2_file.md5, "a metadata update must not touch the data's hashes"

    out = tmp_path / "saved.qcow2"
    cli.openstack("image", "save", "--file", str(out), image_id)
    assert out.read_bytes() == qcow2_file.data

    cli.openstack("image", "delete", image_id)
    gone = cli.openstack("image", "show", image_id, check=False)
    assert gone.returncode != 0
    assert image_id not in [i["ID"] for i in cli.openstack_json("image", "list")]


def test_non_admin_cannot_publish(cli, raw_file):
    """publicize_image is admin-only: a project member asking for --public gets 403."""
    name = unique_name("osc-pub")
    proc = cli.openstack(
        "image", "create", "--file", str(raw_file().path), "--disk-format", "raw",
        "--container-format", "bare", "--public", name, user="alpha-member", check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "403" in proc.stderr or "Forbidden" in proc.stderr, proc.stderr
    assert name not in cli.openstack("image", "list", "--long", user="admin").stdout


def test_member_creates_private_image_in_own_project(cli, glance, raw_file):
    data = raw_file(100_000)
    image = cli.openstack_json(
        "image", "create", "--file", str(data.path), "--disk-format", "raw",
        "--container-format", "bare", "--private", unique_name("osc-priv"), user="alpha-member",
    )  # fmt: skip
    try:
        assert_uploaded(image, data)
        assert image["visibility"] == "private"
        alpha = glance.keystone.connection("alpha-member").current_project_id
        assert image["owner"] == alpha
        # Another project does not even see it.
        assert cli.openstack("image", "show", image["id"], user="beta-member", check=False).returncode != 0
    finally:
        cli.openstack("image", "delete", image["id"], user="alpha-member")


@pytest.mark.slow
def test_64mib_upload_and_save(cli, raw_file, tmp_path):
    data = raw_file(64 * 1024 * 1024, name="big.raw")
    image = cli.openstack_json(
        "image", "create", "--file", str(data.path), "--disk-format", "raw",
        "--container-format", "bare", unique_name("osc-64m"),
    )  # fmt: skip
    try:
        assert_uploaded(image, data)
        out = tmp_path / "big.saved"
        cli.openstack("image", "save", "--file", str(out), image["id"])
        assert out.stat().st_size == data.size
        assert hashlib.sha512(out.read_bytes()).hexdigest() == data.sha512
    finally:
        cli.openstack("image", "delete", image["id"])
