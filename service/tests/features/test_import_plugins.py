"""Import plugins against real glance-registry + glance-api processes (issue 18):
``[image_import_opts] image_import_plugins`` with upstream's image_decompression,
image_conversion (the host's qemu-img, Debian's qemu-utils) and inject_image_metadata.

* a qcow2 made by ``qemu-img`` imported with glance-direct (and web-download) lands as raw, with
  the data ``qemu-img convert`` gives, its size, virtual size and sha512;
* a qcow2 with a backing file, or with an external data file, is refused with a task message,
  whether the download's inspection or the conversion plugin (behind a gzip) finds it;
* properties are injected for users without the ignored roles, not for admin;
* gzip, zip and xz content is decompressed;
* on a real Ceph cluster (``tests/fixtures/ceph.py``): the converted image lands in rbd as raw,
  ``rbd info`` shows its size, and a Nova-style copy-on-write clone of its snapshot reads back
  the converted data.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.availability import unavailable
from tests.fixtures.ceph import CephCluster, CephStartError, bindings_dir, missing_binaries, start_ceph
from tests.fixtures.glance_procs import GlanceProcs, start_glance
from tests.functional.api.import_helpers import OCTET, DataServer, wait_image
from tests.functional.conftest import Http

MiB = 1024 * 1024
INJECTED = {"cloud_region": "east", "billing_tier": "gold"}
# Through the toolkit's variables (templates/glance-api.conf.j2), as a deployment sets them.
PLUGIN_VARS = {
    "glance_image_import_plugins": ["image_decompression", "image_conversion", "inject_image_metadata"],
    "glance_inject_metadata_properties": INJECTED,
    "glance_inject_metadata_ignore_user_roles": ["admin"],
}
CEPH_PACKAGES = (
    "Debian packages ceph-mon ceph-mgr ceph-osd ceph-common python3-rbd python3-rados "
    "(make deps: scripts/host-deps.sh)"
)


@pytest.fixture(scope="module", autouse=True)
def qemu_img() -> None:
    if shutil.which("qemu-img") is None:
        unavailable(
            "qemu-img is not installed", "Debian package qemu-utils (make deps: scripts/host-deps.sh)"
        )


def _options(workdir: Path, store: dict | None = None) -> dict:
    options = {
        "DEFAULT": {"node_staging_uri": f"file://{workdir / 'staging'}/"},
        "import_filtering_opts": {"allowed_hosts": "[127.0.0.1]", "allowed_ports": "[]"},
    }
    if store:
        options["glance_store"] = store
    return options


@pytest.fixture(scope="module")
def glance(tmp_path_factory) -> Iterator[GlanceProcs]:
    workdir = tmp_path_factory.mktemp("glance-plugins")
    procs = start_glance(workdir, workers=1, extra_api=_options(workdir), extra_vars=PLUGIN_VARS)
    yield procs
    procs.stop()


@pytest.fixture(scope="module")
def web() -> Iterator[DataServer]:
    server = DataServer()
    yield server
    server.stop()


@pytest.fixture
def http(glance) -> Http:
    return Http(glance.api_url)


# -- data made with qemu-img ----------------------------------------------------------------------
def _qemu(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True, timeout=120)


def _payload(size: int) -> bytes:
    """Incompressible data with a recognisable start (no disk-format magic)."""
    return b"glance import plugins\n" + os.urandom(size - 22)


def _qcow2(tmp_path: Path, size: int = 6 * MiB) -> tuple[bytes, bytes]:
    """A qcow2 made by qemu-img from raw data, and the raw data ``qemu-img convert`` gives back."""
    raw = tmp_path / f"{uuid.uuid4().hex}.raw"
    raw.write_bytes(_payload(size))
    qcow2 = raw.with_suffix(".qcow2")
    _qemu("convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2))
    back = raw.with_suffix(".back")
    _qemu("convert", "-f", "qcow2", "-O", "raw", str(qcow2), str(back))
    return qcow2.read_bytes(), back.read_bytes()


def _with_backing_file(tmp_path: Path) -> bytes:
    base = tmp_path / "base.qcow2"
    _qemu("create", "-f", "qcow2", str(base), "16M")
    top = tmp_path / "top.qcow2"
    _qemu("create", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(top))
    return top.read_bytes()


def _with_data_file(tmp_path: Path) -> bytes:
    img = tmp_path / "df.qcow2"
    _qemu("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'df.raw'}", str(img), "16M")
    return img.read_bytes()


def sha512(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


# -- API steps --------------------------------------------------------------------------------
def stage_and_import(http: Http, data: bytes, disk_format: str, timeout: float = 120) -> dict:
    image = http.create_image(disk_format=disk_format, container_format="bare")
    resp = http.put(f"/v2/images/{image['id']}/stage", data=data, headers=OCTET)
    assert resp.status_code == 204, resp.text
    resp = http.post(f"/v2/images/{image['id']}/import", json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 202, resp.text
    return wait_image(http, image["id"], timeout=timeout)


def web_import(http: Http, web: DataServer, data: bytes, disk_format: str) -> dict:
    name = uuid.uuid4().hex
    web.files[name] = data
    image = http.create_image(disk_format=disk_format, container_format="bare")
    body = {"method": {"name": "web-download", "uri": web.url(name)}}
    resp = http.post(f"/v2/images/{image['id']}/import", json=body)
    assert resp.status_code == 202, resp.text
    return wait_image(http, image["id"], timeout=120)


def task_of(http: Http, image_id: str) -> dict:
    tasks = http.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    assert len(tasks) == 1, tasks
    return tasks[0]


def download(http: Http, image_id: str) -> bytes:
    resp = http.get(f"/v2/images/{image_id}/file")
    assert resp.status_code == 200, resp.text
    return resp.content


def assert_lands_as(image: dict, data: bytes) -> None:
    assert image["status"] == "active", image
    assert image["disk_format"] == "raw" and image["container_format"] == "bare"
    assert image["size"] == len(data) and image["virtual_size"] == len(data)
    assert image["os_hash_algo"] == "sha512" and image["os_hash_value"] == sha512(data)
    assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()


# -- conversion ---------------------------------------------------------------------------------
def test_qcow2_glance_direct_lands_as_raw_with_qemu_img_convert_data(http, tmp_path):
    qcow2, raw = _qcow2(tmp_path)
    image = stage_and_import(http, qcow2, "qcow2")
    assert_lands_as(image, raw)
    assert sha512(download(http, image["id"])) == sha512(raw)
    assert task_of(http, image["id"])["status"] == "success"


def test_qcow2_web_download_lands_as_raw(http, web, tmp_path):
    qcow2, raw = _qcow2(tmp_path, 3 * MiB)
    image = web_import(http, web, qcow2, "qcow2")
    assert_lands_as(image, raw)


@pytest.mark.parametrize("kind", ["backing file", "external data file"])
def test_qcow2_with_a_host_file_is_refused_with_a_task_message(http, web, tmp_path, kind):
    data = _with_backing_file(tmp_path) if kind == "backing file" else _with_data_file(tmp_path)
    # glance-direct: staging inspects the data already (415, no task).
    image = http.create_image(disk_format="qcow2", container_format="bare")
    resp = http.put(f"/v2/images/{image['id']}/stage", data=data, headers=OCTET)
    assert resp.status_code == 415 and kind in resp.text
    # web-download: the task fails with the reason, the image is back in queued, nothing kept.
    image = web_import(http, web, data, "qcow2")
    assert image["status"] == "queued" and image["disk_format"] == "qcow2"
    task = task_of(http, image["id"])
    assert task["status"] == "failure" and kind in task["message"], task


@pytest.mark.parametrize("kind", ["backing file", "external data file"])
def test_the_conversion_plugin_refuses_what_a_gzip_hid(http, tmp_path, kind):
    """Staged as a gzip (raw to the stage inspection); decompression reveals the qcow2 and the
    conversion plugin refuses it before qemu-img opens it."""
    data = _with_backing_file(tmp_path) if kind == "backing file" else _with_data_file(tmp_path)
    image = stage_and_import(http, gzip.compress(data), "raw")
    assert image["status"] == "queued" and image["disk_format"] == "raw", image
    task = task_of(http, image["id"])
    assert task["status"] == "failure", task
    assert "disallowed configuration" in task["message"] and kind in task["message"], task
    assert not INJECTED.keys() & image.keys()


def test_declared_format_must_be_the_data(http, tmp_path):
    # vmdk declared, qcow2 staged: the stage's inspection answers first (as for an upload).
    qcow2, _ = _qcow2(tmp_path, MiB)
    image = http.create_image(disk_format="vmdk", container_format="bare")
    resp = http.put(f"/v2/images/{image['id']}/stage", data=qcow2, headers=OCTET)
    assert resp.status_code == 415


# -- injection ------------------------------------------------------------------------------------
def test_properties_injected_for_a_member_not_for_admin(glance, tmp_path):
    data = _payload(MiB)
    member = Http(glance.api_url, roles="reader,member")
    image = stage_and_import(member, data, "raw")
    assert image["status"] == "active"
    assert {k: image.get(k) for k in INJECTED} == INJECTED
    admin = Http(glance.api_url, roles="reader,member,admin")
    image = stage_and_import(admin, data, "raw")
    assert image["status"] == "active"
    assert not INJECTED.keys() & image.keys(), image


# -- decompression --------------------------------------------------------------------------------
def _compress(kind: str, data: bytes) -> bytes:
    if kind == "gzip":
        return gzip.compress(data)
    if kind == "xz":
        return lzma.compress(data)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("disk.raw", data)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["gzip", "zip", "xz"])
def test_compressed_data_is_decompressed(http, kind):
    data = _payload(2 * MiB) + bytes(2 * MiB)
    image = stage_and_import(http, _compress(kind, data), "raw")
    assert_lands_as(image, data)
    assert sha512(download(http, image["id"])) == sha512(data)


def test_gzip_of_a_qcow2_is_decompressed_then_converted(http, tmp_path):
    qcow2, raw = _qcow2(tmp_path, 2 * MiB)
    # Declared raw (what the client sends is a gzip): after decompression the data is a qcow2,
    # which the conversion plugin refuses as not the declared format.
    image = stage_and_import(http, gzip.compress(qcow2), "raw")
    assert image["status"] == "queued"
    assert "Image has disallowed configuration" in task_of(http, image["id"])["message"]


# -- rbd ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ceph(tmp_path_factory) -> Iterator[CephCluster]:
    missing = missing_binaries()
    if missing:
        unavailable(f"Ceph is not installed (no {', '.join(missing)})", CEPH_PACKAGES)
    try:
        cluster = start_ceph(tmp_path_factory.mktemp("ceph"), with_rgw=False)
    except CephStartError as exc:
        unavailable(f"the Ceph test cluster did not start: {exc}", CEPH_PACKAGES)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def glance_rbd(ceph, tmp_path_factory) -> Iterator[GlanceProcs]:
    pybind = bindings_dir(ceph.workdir)
    if pybind is None:
        unavailable("the rados/rbd Python bindings are not installed", CEPH_PACKAGES)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(pybind), saved) if p)
    workdir = tmp_path_factory.mktemp("glance-plugins-rbd")
    try:
        procs = start_glance(
            workdir,
            workers=1,
            extra_api=_options(workdir, ceph.glance_store_options("rbd")),
            extra_vars=PLUGIN_VARS,
        )
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    yield procs
    procs.stop()


def test_qcow2_into_rbd_lands_as_raw_and_clones_copy_on_write(glance_rbd, ceph, tmp_path):
    http = Http(glance_rbd.api_url)
    qcow2, raw = _qcow2(tmp_path, 12 * MiB)
    image = stage_and_import(http, qcow2, "qcow2", timeout=180)
    assert_lands_as(image, raw)
    name = f"{ceph.pool}/{image['id']}"
    info = json.loads(ceph.rbd("info", "--format", "json", name))
    assert info["size"] == len(raw)
    snap = json.loads(ceph.rbd("info", "--format", "json", f"{name}@snap"))
    assert snap["protected"] == "true"
    # Nova's rbd image backend: clone the protected snapshot, boot from the clone.
    child = f"{ceph.pool}/nova-{uuid.uuid4().hex[:8]}"
    ceph.rbd("clone", f"{name}@snap", child)
    try:
        clone = json.loads(ceph.rbd("info", "--format", "json", child))
        assert clone["parent"]["image"] == image["id"] and clone["parent"]["snapshot"] == "snap"
        out = tmp_path / "clone.raw"
        ceph.rbd("export", child, str(out), timeout=120)
        assert sha512(out.read_bytes()) == sha512(raw) == image["os_hash_value"]
    finally:
        ceph.rbd("rm", child, check=False)
