"""Format inspection with hand-built headers of every format, fed as a stream."""

from __future__ import annotations

import os
import struct

import pytest

from glance_service.images.format_inspector import FormatError, StreamInspector
from tests.unit.images.format_builders import (
    MiB,
    descriptor,
    iso,
    luks,
    mbr,
    ploop,
    qcow2,
    vdi,
    vhd_footer,
    vhdx,
    vmdk,
)


def inspect(data: bytes, disk_format: str, block: int = MiB, **kw):
    ins = StreamInspector(disk_format, **kw)
    for i in range(0, len(data), block):
        ins.feed(data[i : i + block])
    return ins.finish()


BLOCKS = [1 << 20, 4096, 511, 65537]


# -- accepted ------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize(
    ("data", "fmt", "virtual_size"),
    [
        (qcow2(10 * MiB), "qcow2", 10 * MiB),
        (qcow2(7 * MiB, version=2), "qcow2", 7 * MiB),
        (vmdk(descriptor()), "vmdk", 20480 * 512),
        (vmdk(descriptor("streamOptimized")), "vmdk", 20480 * 512),
        (vhd_footer(8 * MiB) + bytes(4096) + vhd_footer(8 * MiB), "vhd", 8 * MiB),
        (bytes(8 * 1024) + vhd_footer(8 * 1024, disk_type=2), "vhd", 8 * 1024),
        (vhdx(64 * MiB), "vhdx", 64 * MiB),
        (vdi(32 * MiB), "vdi", 32 * MiB),
        (iso(300, 2048), "iso", 300 * 2048),
        (iso(10, 2048, boot_record_first=True, mbr=True), "iso", 10 * 2048),
        (ploop(4096), "ploop", 4096 * 512),
        (ploop(8, v2=False), "ploop", 8 * 512),
    ],
    ids=["qcow2", "qcow2v2", "vmdk", "vmdk-stream", "vhd-dynamic", "vhd-fixed", "vhdx", "vdi", "iso",
         "iso-hybrid", "ploop", "ploop-v1"],
)  # fmt: skip
def test_valid_images_give_their_virtual_size(data, fmt, virtual_size, block):
    verdict = inspect(data, fmt, block)
    assert verdict.detected == fmt
    assert verdict.virtual_size == virtual_size
    assert verdict.size == len(data)


def test_vmdk_descriptor_not_right_after_the_header_is_refused():
    # oslo's rule (qemu and VMware write it at sector 1): a header pointing elsewhere is refused,
    # whatever the label.
    data = vmdk(descriptor(), desc_sector=1024, length=2 * MiB)
    for block in BLOCKS:
        refused(data, "vmdk", "descriptor location", block=block)
    refused(data, "raw", "descriptor location", require_match=False)


@pytest.mark.parametrize("fmt", ["raw", "ami", "aki", "ari"])
def test_raw_accepts_unrecognised_bytes_and_reports_their_size(fmt):
    data = os.urandom(300 * 1024)
    verdict = inspect(data, fmt)
    assert verdict.detected is None and verdict.virtual_size == len(data)


def test_raw_accepts_iso_content_and_partition_tables():
    verdict = inspect(iso(), "raw")
    assert verdict.detected == "iso" and verdict.virtual_size == len(iso())
    for data in (mbr(), mbr([(0xEE, 1, 0xFFFFFFFF)])):  # an MBR disk, a GPT disk
        verdict = inspect(data, "raw")
        assert verdict.detected == "gpt" and verdict.virtual_size == len(data)


def test_partition_table_without_partitions_is_refused():
    # Upstream's default (oslo's "mbr" safety check, no gpt_safety_checks_nonfatal).
    refused(mbr(()), "raw", "partition")


def test_luks_labelled_raw_is_accepted_as_raw():
    # Cinder uploads encrypted volumes as raw: LUKS is raw to a hypervisor unless told otherwise.
    verdict = inspect(luks(), "raw")
    assert verdict.detected == "luks" and verdict.virtual_size == len(luks())
    refused(luks(), "qcow2", "disk_format is qcow2")


@pytest.mark.parametrize("fmt", ["qcow2", "iso", "raw"])
def test_data_recognised_as_two_formats_is_refused(fmt):
    # A qcow2 header with an ISO volume descriptor behind it: which one a reader sees depends on
    # the reader, so neither is trusted (iso + partition table is the one allowed pair).
    data = bytearray(qcow2())
    data[32768:32774] = b"\x01CD001"
    refused(bytes(data), fmt, "formats", require_match=False)


@pytest.mark.parametrize("fmt", ["qcow2", "vmdk", "vhd", "vhdx", "iso", "raw"])
def test_zero_bytes_are_accepted_whatever_the_format(fmt):
    verdict = StreamInspector(fmt).finish()
    assert verdict.size == 0 and verdict.virtual_size is None


def test_finish_is_idempotent():
    ins = StreamInspector("qcow2")
    ins.feed(qcow2())
    assert ins.finish() is ins.finish()


# -- refused -----------------------------------------------------------------------------------
def refused(data: bytes, fmt: str, match: str, block: int = MiB, **kw) -> None:
    with pytest.raises(FormatError, match=match):
        inspect(data, fmt, block, **kw)


def test_qcow2_with_backing_file_is_refused_whatever_the_label():
    for fmt in ("qcow2", "raw", "vmdk"):
        refused(qcow2(backing=True), fmt, "backing file")
        refused(qcow2(backing=True), fmt, "backing file", require_match=False)


def test_qcow2_with_external_data_file_is_refused():
    refused(qcow2(data_file=True), "qcow2", "external data file")
    refused(qcow2(data_file=True), "raw", "external data file", require_match=False)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (qcow2(version=4), "version 4"),
        (qcow2()[:40], "truncated"),
        (b"QFI\xfb" + os.urandom(6), "truncated"),
    ],
)
def test_broken_qcow2_headers_are_refused(data, match):
    refused(data, "qcow2", match)


def test_unknown_qcow2_incompatible_features_are_refused():
    data = bytearray(qcow2())
    struct.pack_into(">Q", data, 72, 1 << 40)
    refused(bytes(data), "qcow2", "incompatible features")


@pytest.mark.parametrize(
    ("desc", "match"),
    [
        (descriptor("monolithicFlat", ('RW 20480 FLAT "disk-flat.vmdk" 0',)), "createType"),
        (descriptor("vmfs"), "createType"),
        (descriptor(extents=('RW 20480 SPARSE "/etc/passwd"',)), "outside the image"),
        (descriptor(extents=('RW 20480 SPARSE "../images/other.vmdk"',)), "outside the image"),
        (descriptor(extents=('RW 20480 FLAT "disk.vmdk" 0',)), "outside the image"),
        (descriptor(extents=()), "exactly one sparse extent"),
        (descriptor(extents=('RW 10 SPARSE "a.vmdk"', 'RW 10 SPARSE "b.vmdk"')), "exactly one"),
        (descriptor(extra=('parentFileNameHint="base.vmdk"',)), "parent"),
        (descriptor().replace("parentCID=ffffffff", "parentCID=1234abcd"), "parent"),
        (descriptor(extra=("what is this line",)), "Invalid VMDK descriptor"),
    ],
)
def test_unsafe_vmdk_descriptors_are_refused(desc, match):
    refused(vmdk(desc), "vmdk", match)
    # Unsafe whatever the label.
    refused(vmdk(desc), "raw", match, require_match=False)


@pytest.mark.parametrize("block", BLOCKS)
def test_stream_optimized_vmdk_footer_is_checked(block):
    # oslo reads the footer of a VMDK whose header puts the grain directory at the end.
    data = vmdk(descriptor("streamOptimized"), footer=128, length=MiB)
    assert inspect(data, "vmdk", block).virtual_size == 20480 * 512
    refused(vmdk(descriptor("streamOptimized"), footer=0xFFFFFFFFFFFFFFFF), "vmdk", "footer", block=block)
    bad_end = vmdk(descriptor("streamOptimized"), footer=128)[:-512] + b"\x01" * 512
    refused(bad_end, "raw", "End-of-stream", require_match=False, block=block)


def test_vmdk_allowed_types_is_configurable():
    data = vmdk(descriptor("streamOptimized"))
    refused(data, "vmdk", "createType", vmdk_allowed_types=["monolithicSparse"])


def test_vmdk_without_embedded_descriptor_or_with_a_huge_one_is_refused():
    data = bytearray(vmdk(descriptor()))
    struct.pack_into("<Q", data, 28, 0)
    refused(bytes(data), "vmdk", "descriptor location")
    struct.pack_into("<QQ", data, 28, 1, 100000)
    refused(bytes(data), "vmdk", "truncated")


def test_vmdk_descriptor_past_the_end_is_refused():
    data = vmdk(descriptor(), desc_sector=1)[:600]
    refused(data, "vmdk", "truncated")
    refused(data, "raw", "truncated", require_match=False)


@pytest.mark.parametrize("block", BLOCKS)
def test_standalone_vmdk_descriptor_file_is_refused(block):
    text = descriptor("monolithicFlat", ('RW 20480 FLAT "disk-flat.vmdk" 0',)).encode()
    refused(text, "vmdk", "descriptor file", block=block)
    refused(text, "raw", "descriptor file", require_match=False, block=block)
    # Even one that names a single sparse extent: the extent is another file.
    text = descriptor().encode() + bytes(4096)
    refused(text, "raw", "descriptor file", require_match=False, block=block)


@pytest.mark.parametrize(
    ("data", "fmt", "match"),
    [
        (vhd_footer(disk_type=4) + bytes(1024) + vhd_footer(disk_type=4), "vhd", "Differencing VHD"),
        (vhdx(parent=True), "vhdx", "Differencing VHDX"),
        (vdi(image_type=4), "vdi", "Differencing VDI"),
        (b"QED\x00" + bytes(1020), "raw", "QED"),
    ],
)
def test_images_with_a_parent_are_refused(data, fmt, match):
    refused(data, fmt, match)


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (os.urandom(512 * 1024), "qcow2"),
        (os.urandom(1000), "qcow2"),
        (os.urandom(4096), "vhd"),
        (os.urandom(400 * 1024), "vmdk"),
        (os.urandom(400 * 1024), "iso"),
        (qcow2(), "raw"),
        (qcow2(), "vmdk"),
        (vmdk(descriptor()), "qcow2"),
        (vdi(), "raw"),
        (vhdx(), "vhd"),
        (bytes(8 * 1024) + vhd_footer(8 * 1024, disk_type=2), "raw"),
        (ploop(), "ami"),
        (qcow2() + iso()[65536:], "iso"),
    ],
)
def test_data_of_another_format_is_a_mismatch(data, fmt):
    refused(data, fmt, f"disk_format is {fmt}")


def test_mismatch_is_allowed_when_not_required_but_without_virtual_size():
    verdict = inspect(qcow2(), "raw", require_match=False)
    assert verdict.detected == "qcow2" and verdict.virtual_size is None
    verdict = inspect(os.urandom(4096), "qcow2", require_match=False)
    assert verdict.detected is None and verdict.virtual_size is None


def test_a_mismatch_is_refused_as_soon_as_the_head_has_passed():
    ins = StreamInspector("qcow2")
    with pytest.raises(FormatError):
        ins.feed(os.urandom(MiB))  # the first buffer already decides: no need to read the rest


def test_inspection_stops_working_once_every_format_is_decided():
    # The per-MiB cost: past the headers no inspector is fed, only the size and the tail kept.
    ins = StreamInspector("raw")
    ins.feed(os.urandom(MiB))
    assert ins.live == []
