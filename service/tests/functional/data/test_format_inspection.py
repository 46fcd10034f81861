"""Format inspection through the real API: uploads and stages are inspected as they stream."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.fixtures.glance_procs import start_glance
from tests.functional.conftest import Http
from tests.functional.data.helpers import OCTET, image_files, wait_for
from tests.unit.images.format_builders import MiB, descriptor, iso, luks, mbr, qcow2, vmdk


def qcow2_iso() -> bytes:
    data = bytearray(qcow2())
    data[32768:32774] = b"\x01CD001"
    return bytes(data)


def new_image(http, disk_format: str) -> str:
    return http.create_image(disk_format=disk_format, container_format="bare")["id"]


def upload(http, image_id: str, body):
    return http.put(f"/v2/images/{image_id}/file", data=body, headers=OCTET)


def image(http, image_id: str) -> dict:
    return http.get(f"/v2/images/{image_id}").json()


def assert_refused(glance, http, image_id: str, resp, words: str) -> None:
    # ``words`` is the reason (checked by the unit tests): WebOb's 415 body template shows only
    # the request's content type, so the reason does not reach the response body yet.
    assert resp.status_code == 415, resp.text
    shown = image(http, image_id)
    assert shown["status"] == "queued"
    assert shown["size"] is None and shown["virtual_size"] is None and shown["checksum"] is None
    assert image_files(glance.datadir, image_id) == []
    assert http.get(f"/v2/images/{image_id}/file").status_code == 204


def test_valid_qcow2_becomes_active_with_its_virtual_size(glance, http):
    data = qcow2(virtual_size=1024 * MiB)
    image_id = new_image(http, "qcow2")
    assert upload(http, image_id, data).status_code == 204
    shown = image(http, image_id)
    assert shown["status"] == "active"
    assert shown["virtual_size"] == 1024 * MiB and shown["size"] == len(data)
    assert http.get(f"/v2/images/{image_id}/file").content == data


def test_raw_gets_its_size_as_virtual_size(glance, http):
    data = os.urandom(300 * 1024)
    image_id = new_image(http, "raw")
    assert upload(http, image_id, data).status_code == 204
    assert image(http, image_id)["virtual_size"] == len(data)


def test_iso_labelled_iso_or_raw_is_accepted(glance, http):
    for fmt, virtual in (("iso", 300 * 2048), ("raw", 64 * 1024)):
        image_id = new_image(http, fmt)
        assert upload(http, image_id, iso(300, 2048)).status_code == 204
        assert image(http, image_id)["virtual_size"] == virtual


def test_partition_tables_and_luks_labelled_raw_are_accepted(glance, http):
    # A disk with partitions, and an encrypted volume as Cinder uploads it (raw).
    for data in (mbr(), luks()):
        image_id = new_image(http, "raw")
        assert upload(http, image_id, data).status_code == 204
        assert image(http, image_id)["virtual_size"] == len(data)


@pytest.mark.parametrize("mode", ["content-length", "chunked"])
def test_random_bytes_labelled_qcow2_are_refused(glance, http, mode):
    data = os.urandom(2 * MiB)
    image_id = new_image(http, "qcow2")
    body = data if mode == "content-length" else iter([data[:MiB], data[MiB:]])
    assert_refused(glance, http, image_id, upload(http, image_id, body), "disk_format is qcow2")
    # The image is queued again: the right data can still be uploaded.
    good = qcow2()
    assert upload(http, image_id, good).status_code == 204
    assert image(http, image_id)["os_hash_value"] == hashlib.sha512(good).hexdigest()


def test_a_large_mismatch_is_refused_early(glance, http):
    # 64 MiB announced, refused after the first buffers: the client is answered without the
    # server writing the image (the body is drained, not stored).
    image_id = new_image(http, "qcow2")

    def body():
        for _ in range(64):
            yield os.urandom(MiB)

    assert_refused(glance, http, image_id, upload(http, image_id, body()), "disk_format is qcow2")


@pytest.mark.parametrize(
    ("data", "fmt", "words"),
    [
        (qcow2(backing=True), "qcow2", "backing file"),
        (qcow2(backing=True), "raw", "backing file"),
        (qcow2(data_file=True), "qcow2", "external data file"),
        (vmdk(descriptor("monolithicFlat", ('RW 20480 FLAT "disk-flat.vmdk" 0',))), "vmdk", "createType"),
        (vmdk(descriptor(extents=('RW 20480 SPARSE "/etc/passwd"',))), "vmdk", "outside the image"),
        (qcow2(), "vmdk", "disk_format is vmdk"),
        (qcow2(), "raw", "disk_format is raw"),
        (qcow2_iso(), "qcow2", "several formats"),
        (vmdk(descriptor(), desc_sector=1024, length=2 * MiB), "vmdk", "descriptor location"),
        (mbr(()), "raw", "partition table"),
    ],
    ids=["backing", "backing-as-raw", "data-file", "vmdk-flat", "vmdk-extent", "qcow2-as-vmdk",
         "qcow2-as-raw", "qcow2-and-iso", "vmdk-descriptor-elsewhere", "mbr-without-partitions"],
)  # fmt: skip
def test_unsafe_or_mismatched_data_is_refused(glance, http, data, fmt, words):
    image_id = new_image(http, fmt)
    assert_refused(glance, http, image_id, upload(http, image_id, data), words)


def test_zero_bytes_labelled_qcow2_are_accepted_as_nova_does(glance, http):
    image_id = new_image(http, "qcow2")
    assert upload(http, image_id, b"").status_code == 204
    shown = image(http, image_id)
    assert shown["status"] == "active" and shown["size"] == 0


# -- staging (glance-direct) ---------------------------------------------------------------------
def stage(http, image_id: str, body):
    return http.put(f"/v2/images/{image_id}/stage", data=body, headers=OCTET)


def test_stage_refuses_a_mismatch_and_keeps_nothing(glance, http):
    image_id = new_image(http, "qcow2")
    resp = stage(http, image_id, os.urandom(MiB))
    assert resp.status_code == 415, resp.text
    assert image(http, image_id)["status"] == "queued"
    staging = "/tmp/staging"  # node_staging_uri's default
    assert not os.path.isdir(staging) or not [n for n in os.listdir(staging) if image_id in n]


def test_staged_qcow2_imports_with_its_virtual_size(glance, http):
    data = qcow2(virtual_size=512 * MiB)
    image_id = new_image(http, "qcow2")
    assert stage(http, image_id, data).status_code == 204
    resp = http.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 202, resp.text
    shown = wait_for(
        lambda: (lambda i: i if i["status"] in ("active", "queued") else None)(image(http, image_id))
    )
    assert shown["status"] == "active"
    assert shown["virtual_size"] == 512 * MiB and shown["size"] == len(data)


# -- require_image_format_match = False ------------------------------------------------------------
@pytest.fixture(scope="module")
def lenient(tmp_path_factory):
    procs = start_glance(
        tmp_path_factory.mktemp("glance-lenient"),
        extra_api={"image_format": {"require_image_format_match": "false"}},
        workers=1,
    )
    yield procs
    procs.stop()


def test_without_match_a_mismatch_is_kept_but_unsafe_data_still_refused(lenient):
    http = Http(lenient.api_url)
    image_id = new_image(http, "qcow2")
    assert upload(http, image_id, os.urandom(4096)).status_code == 204
    shown = image(http, image_id)
    assert shown["status"] == "active" and shown["virtual_size"] is None

    image_id = new_image(http, "raw")
    assert_refused(lenient, http, image_id, upload(http, image_id, qcow2(backing=True)), "backing file")
