"""Interoperable import and multi-store with the real ``glance`` CLI, against Keystone.

A second deployment of our own (the shared one is single-store): two file stores, the
reserved staging and tasks stores, and web-download filtered to a loopback server. The CLI
reaches it through ``--os-image-url`` with a real Keystone token.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import time

import pytest

from tests.e2e.conftest import BIN, CLI_TIMEOUT, _clean_env
from tests.e2e.helpers import parse_table, unique_name
from tests.fixtures.glance_procs import start_glance
from tests.fixtures.nginx import Nginx


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    # web-download's source is a real web server: Debian's nginx on loopback
    server = Nginx(tmp_path_factory.mktemp("nginx"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def multi(tmp_path_factory, mariadb, memcached, keystone):  # noqa: F811
    work = tmp_path_factory.mktemp("glance-multistore")
    extra = {
        "DEFAULT": {"enabled_backends": "fast:file,cheap:file"},
        "glance_store": {"default_backend": "fast"},
        "fast": {"filesystem_store_datadir": str(work / "fast"), "store_description": "Fast disks"},
        "cheap": {"filesystem_store_datadir": str(work / "cheap"), "store_description": "Cheap disks"},
        "os_glance_staging_store": {"filesystem_store_datadir": str(work / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(work / "tasks")},
        "import_filtering_opts": {"allowed_hosts": "[127.0.0.1]", "allowed_ports": "[]"},
    }
    procs = start_glance(
        work,
        flavor="keystone",
        database_url=mariadb.create_database("glance_multistore", "glance", secrets.token_urlsafe(16)),
        keystone={
            "public_url": keystone.url,
            "internal_url": keystone.url,
            "password": keystone.glance_password,
            "user": "glance",
            "project": "service",
            "region": "RegionOne",
            "memcached_servers": [memcached.address],
        },
        extra_api=extra,
        workers=1,
    )
    procs.dirs = {name: work / name for name in ("fast", "cheap", "staging")}
    yield procs
    procs.stop()


def glance(
    multi, keystone, *args: str, user: str = "admin", check: bool = True
) -> subprocess.CompletedProcess:
    env = _clean_env() | keystone.env(user)
    cmd = [str(BIN / "glance"), "--os-image-url", multi.api_url, *args]
    # stdin closed: glanceclient then knows no image data comes that way (it would upload
    # whatever a non-terminal stdin holds, even nothing)
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, preexec_fn=lambda: os.close(0)
    )
    if check and proc.returncode != 0:
        pytest.fail(f"glance {' '.join(args[:3])} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def show(multi, keystone, image_id: str, user: str = "admin") -> dict[str, str]:
    return parse_table(glance(multi, keystone, "image-show", image_id, user=user).stdout)


def wait_settled(multi, keystone, image_id: str, timeout: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        image = show(multi, keystone, image_id)
        busy = image.get("os_glance_import_task") or image.get("os_glance_importing_to_stores")
        if image["status"] in ("active", "queued") and not busy:
            return image
        if time.monotonic() > deadline:
            raise AssertionError(f"image {image_id} did not settle: {image}")
        time.sleep(0.5)


def test_stores_info(multi, keystone):
    out = glance(multi, keystone, "stores-info").stdout
    assert "fast" in out and "cheap" in out and "Fast disks" in out
    assert "os_glance_staging_store" not in out


def test_stage_and_glance_direct_import(multi, keystone, tmp_path):
    data = os.urandom(512 * 1024)
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    created = parse_table(
        glance(
            multi, keystone, "image-create", "--name", unique_name("direct"),
            "--disk-format", "raw", "--container-format", "bare", user="alpha-member",
        ).stdout
    )  # fmt: skip
    image_id = created["id"]
    assert created["status"] == "queued"
    glance(multi, keystone, "image-stage", "--file", str(path), image_id, user="alpha-member")
    assert show(multi, keystone, image_id, user="alpha-member")["status"] == "uploading"
    glance(multi, keystone, "image-import", "--import-method", "glance-direct", image_id, user="alpha-member")
    image = wait_settled(multi, keystone, image_id)
    assert image["status"] == "active"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert image["stores"] == "fast"
    assert not os.listdir(multi.dirs["staging"])

    out = tmp_path / "back.raw"
    glance(multi, keystone, "image-download", "--file", str(out), image_id, user="alpha-member")
    assert out.read_bytes() == data

    tasks = glance(multi, keystone, "image-tasks", image_id, user="alpha-member").stdout
    assert "success" in tasks  # glanceclient shows message, status and updated_at


def test_copy_image_between_stores_and_delete_from_one(multi, keystone, tmp_path):
    data = os.urandom(300 * 1024)
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    created = parse_table(
        glance(
            multi, keystone, "image-create", "--name", unique_name("copy"), "--file", str(path),
            "--disk-format", "raw", "--container-format", "bare",
        ).stdout
    )  # fmt: skip
    image_id = created["id"]
    assert created["status"] == "active" and created["stores"] == "fast"

    glance(multi, keystone, "image-import", "--import-method", "copy-image", "--stores", "cheap", image_id)
    image = wait_settled(multi, keystone, image_id)
    assert sorted(image["stores"].split(",")) == ["cheap", "fast"]
    assert image["os_hash_value"] == created["os_hash_value"] == hashlib.sha512(data).hexdigest()
    for store in ("fast", "cheap"):
        assert (multi.dirs[store] / image_id).read_bytes() == data

    # copying is for admins only
    denied = glance(
        multi, keystone, "image-import", "--import-method", "copy-image", "--stores", "fast", image_id,
        user="alpha-member", check=False,
    )  # fmt: skip
    assert denied.returncode != 0

    glance(multi, keystone, "stores-delete", "--store", "fast", image_id)
    assert show(multi, keystone, image_id)["stores"] == "cheap"
    assert not (multi.dirs["fast"] / image_id).exists()


def test_web_download_from_a_local_nginx(multi, keystone, web):
    data = os.urandom(200 * 1024)
    web.files["cli.raw"] = data
    created = parse_table(
        glance(
            multi, keystone, "image-create", "--name", unique_name("web"),
            "--disk-format", "raw", "--container-format", "bare", user="alpha-member",
        ).stdout
    )  # fmt: skip
    image_id = created["id"]
    glance(
        multi, keystone, "image-import", "--import-method", "web-download", "--uri", web.url("cli.raw"),
        "--stores", "cheap", image_id, user="alpha-member",
    )  # fmt: skip
    image = wait_settled(multi, keystone, image_id)
    assert image["status"] == "active" and image["stores"] == "cheap"
    assert image["checksum"] == hashlib.md5(data).hexdigest()
