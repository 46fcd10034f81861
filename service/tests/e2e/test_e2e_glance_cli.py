"""The ``glance`` CLI (python-glanceclient's shell), unmodified, against Keystone."""

from __future__ import annotations

from tests.e2e.helpers import parse_table, unique_name


def test_image_lifecycle(cli, qcow2_file, tmp_path):
    name = unique_name("glance-cli")
    proc = cli.glance(
        "image-create", "--name", name, "--file", str(qcow2_file.path),
        "--disk-format", "qcow2", "--container-format", "bare", "--progress",
    )  # fmt: skip
    created = parse_table(proc.stdout)
    assert created["status"] == "active", proc.stdout
    assert created["checksum"] == qcow2_file.md5
    assert created["os_hash_algo"] == "sha512"
    assert created["os_hash_value"] == qcow2_file.sha512
    assert int(created["size"]) == qcow2_file.size
    assert created["disk_format"] == "qcow2"
    assert created["name"] == name
    image_id = created["id"]

    listed = cli.glance("image-list").stdout
    assert image_id in listed and name in listed

    shown = parse_table(cli.glance("image-show", image_id).stdout)
    assert shown["id"] == image_id
    assert shown["checksum"] == qcow2_file.md5
    assert shown["visibility"] in ("shared", "private")

    out = tmp_path / "downloaded.qcow2"
    cli.glance("image-download", "--file", str(out), image_id)
    assert out.read_bytes() == qcow2_file.data

    cli.glance("image-delete", image_id)
    gone = cli.glance("image-show", image_id, check=False)
    assert gone.returncode != 0
    assert "404" in gone.stderr or "No image" in gone.stderr or "not found" in gone.stderr.lower(), (
        gone.stderr
    )
    assert image_id not in cli.glance("image-list").stdout


def test_reader_cannot_create(cli, raw_file):
    name = unique_name("glance-cli-reader")
    proc = cli.glance(
        "image-create", "--name", name, "--file", str(raw_file().path),
        "--disk-format", "raw", "--container-format", "bare", user="alpha-reader", check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "403" in proc.stderr or "Forbidden" in proc.stderr, proc.stderr
    assert name not in cli.glance("image-list", user="admin").stdout
