"""Format inspection of image data while it streams (pure: bytes in, verdict out).

A crafted qcow2 or vmdk header can make a hypervisor (or ``qemu-img``) open files of the host:
a qcow2 backing file or external data file, a VMDK extent naming another file, a differencing
VHD/VHDX/VDI with its parent. So every upload, stage and import is fed through a
``StreamInspector`` as it streams: it keeps the first ``HEAD`` bytes, the last 512 (a fixed
VHD's footer) and the few regions a header points to (a VMDK's embedded descriptor, a VHDX's
metadata), never the image, and it never asks for a second pass.

The verdict, checked against the declared ``disk_format``:

* a format the data is recognised as is checked for safety whatever was declared (a qcow2
  with a backing file is refused even when labelled raw);
* with ``require_match`` the data must be the declared format (raw, and ami/ari/aki, which
  are raw disks: anything that is not another container format; ISO 9660 content and
  partition tables are raw to a hypervisor and stay allowed);
* zero bytes are accepted for any format (Nova activates empty snapshot images that way);
* ``virtual_size`` comes from the header of the declared format when it matched (raw: the
  data size).

Errors are ``FormatError`` with a message for the API caller (the API answers 415).
"""

from __future__ import annotations

import dataclasses
import functools
import struct
import uuid

from glance_service import exceptions

# First bytes kept: every signature below is inside, and the VHDX region table ends here.
HEAD = 256 * 1024
TAIL = 512
# A region a header points to is captured only up to this size (a VMDK descriptor is a few
# KiB; a VHDX metadata table is 64 KiB): a header cannot make us buffer more.
MAX_REGION = 1024 * 1024

RAW_LIKE = frozenset({"raw", "ami", "ari", "aki"})
DEFAULT_VMDK_TYPES = ("streamOptimized", "monolithicSparse")

QCOW2_MAGIC = b"QFI\xfb"
QED_MAGIC = b"QED\x00"
VMDK_MAGIC = b"KDMV"
VMDK_DESCRIPTOR = b"# disk descriptorfile"
VHD_COOKIE = b"conectix"
VHDX_SIGNATURE = b"vhdxfile"
VDI_SIGNATURE = 0xBEDA107F
ISO_OFFSETS = (32768, 34816, 36864)  # volume descriptors; "CD001" is one byte further
PLOOP_SIGNATURES = (b"WithoutFreeSpace", b"WithouFreSpacExt")

# qcow2 incompatible feature bits: 0 dirty, 1 corrupt, 2 external data file, 3 compression
# type, 4 extended L2 entries. Bit 2 is refused; unknown bits mean a format we cannot vouch for.
QCOW2_DATA_FILE = 1 << 2
QCOW2_KNOWN_INCOMPATIBLE = 0b11111

VHDX_REGION_TABLE = 192 * 1024
VHDX_METADATA_REGION = uuid.UUID("8b7ca206-4790-4b9a-b8fe-575f050f886e").bytes_le
VHDX_VIRTUAL_DISK_SIZE = uuid.UUID("2fa54224-cd1b-4876-b211-5dbed83bf4b8").bytes_le
VHDX_PARENT_LOCATOR = uuid.UUID("a8d35f2d-b30b-454d-abf7-d3d84834ab0c").bytes_le


class FormatError(Exception):
    """The data does not match its declared format, or is unsafe to keep."""


@dataclasses.dataclass
class Verdict:
    size: int
    detected: str | None  # the container format recognised in the data (None: raw)
    virtual_size: int | None


class _Region:
    def __init__(self, offset: int, length: int, on_complete):
        self.offset = offset
        self.length = length
        self.data = bytearray()
        self.on_complete = on_complete

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def complete(self) -> bool:
        return len(self.data) >= self.length


def _u16le(b, off):
    return struct.unpack_from("<H", b, off)[0]


def _u32le(b, off):
    return struct.unpack_from("<I", b, off)[0]


def _u64le(b, off):
    return struct.unpack_from("<Q", b, off)[0]


def _u32be(b, off):
    return struct.unpack_from(">I", b, off)[0]


def _u64be(b, off):
    return struct.unpack_from(">Q", b, off)[0]


class StreamInspector:
    """Feed the stream's buffers in order with ``feed``; ``finish`` gives the verdict.

    Both raise ``FormatError`` as soon as the data is known to be refused (for most formats
    once the first ``HEAD`` bytes have gone by, so a bad upload stops early).
    """

    def __init__(
        self,
        disk_format: str | None,
        *,
        require_match: bool = True,
        vmdk_allowed_types: tuple[str, ...] | list[str] = DEFAULT_VMDK_TYPES,
    ):
        self.disk_format = (disk_format or "raw").lower()
        self.require_match = require_match
        self.vmdk_allowed_types = {t.lower() for t in vmdk_allowed_types}
        self.pos = 0
        self._head = bytearray()
        self._tail = b""
        self._regions: list[_Region] = []
        self._head_checked = False
        self._finished: Verdict | None = None
        # Filled by the header checks of the detected format.
        self.detected: str | None = None
        self._virtual_size: int | None = None

    # -- streaming ------------------------------------------------------------------------
    def feed(self, buf: bytes) -> None:
        view = memoryview(buf)
        while view:
            # Cut the buffer at the next point where a check may add or need a region, so
            # that a region registered there is filled from the bytes that follow it.
            stop = len(view)
            if not self._head_checked:
                stop = min(stop, HEAD - self.pos)
            for region in self._regions:
                if not region.complete and region.end > self.pos:
                    stop = min(stop, max(region.end - self.pos, 1))
            piece, view = view[:stop], view[stop:]
            self._consume(piece)
            if not self._head_checked and self.pos >= HEAD:
                self._check_head(final=False)
            self._complete_regions()

    def _consume(self, piece: memoryview) -> None:
        start = self.pos
        if start < HEAD:
            self._head += piece[: HEAD - start]
        for region in self._regions:
            if region.complete:
                continue
            lo = max(region.offset + len(region.data), start)
            hi = min(region.end, start + len(piece))
            if lo < hi and lo == region.offset + len(region.data):
                region.data += piece[lo - start : hi - start]
        self._tail = (self._tail + bytes(piece[-TAIL:]))[-TAIL:]
        self.pos += len(piece)

    def _complete_regions(self) -> None:
        for region in list(self._regions):
            if region.complete and region.on_complete is not None:
                callback, region.on_complete = region.on_complete, None
                callback(bytes(region.data[: region.length]))

    def _add_region(self, offset: int, length: int, on_complete) -> None:
        if length <= 0 or length > MAX_REGION:
            raise FormatError(f"The {self.detected} header points to a region of {length} bytes.")
        region = _Region(offset, length, on_complete)
        # What already went by is only in the head (regions are added at head or region ends).
        if offset < len(self._head):
            region.data += self._head[offset : min(region.end, len(self._head))]
        if not region.complete and offset + len(region.data) < self.pos:
            raise FormatError(f"The {self.detected} header points back to data already past.")
        self._regions.append(region)
        self._complete_regions()

    def finish(self) -> Verdict:
        """The verdict once the stream has ended (idempotent)."""
        if self._finished is not None:
            return self._finished
        if self.pos == 0:
            # Nova activates empty snapshot images with zero bytes (and disk_format qcow2).
            self._finished = Verdict(0, None, None)
            return self._finished
        if not self._head_checked:
            self._check_head(final=True)
        for region in self._regions:
            if not region.complete:
                raise FormatError(
                    f"The {self.detected} header points past the end of the data ({self.pos} bytes)."
                )
        if self.detected is None and self._tail[:8] == VHD_COOKIE and self.pos >= TAIL:
            # A fixed VHD has its footer at the end only.
            self.detected = "vhd"
            self._check_vhd_footer(self._tail)
        self._check_match()
        virtual_size = None
        if self.detected == self.disk_format:
            virtual_size = self._virtual_size
        elif self.disk_format in RAW_LIKE and (self.detected is None or self._raw_accepts()):
            virtual_size = self.pos
        self._finished = Verdict(self.pos, self.detected, virtual_size)
        return self._finished

    # -- detection ------------------------------------------------------------------------
    def _check_head(self, final: bool) -> None:
        self._head_checked = True
        head = bytes(self._head)
        if head.startswith(QCOW2_MAGIC):
            self.detected = "qcow2"
            self._check_qcow2(head)
        elif head.startswith(QED_MAGIC):
            self.detected = "qed"
            raise FormatError("QED images are not supported: no hypervisor here reads them safely.")
        elif head.startswith(VMDK_MAGIC):
            self.detected = "vmdk"
            self._check_vmdk_sparse(head)
        elif head[:64].lower().lstrip().startswith(VMDK_DESCRIPTOR):
            self.detected = "vmdk"
            raise FormatError(
                "A VMDK descriptor file refers to its data in other files: upload a single-file "
                "(monolithicSparse or streamOptimized) VMDK."
            )
        elif head.startswith(VHDX_SIGNATURE):
            self.detected = "vhdx"
            self._check_vhdx(head)
        elif head.startswith(VHD_COOKIE):
            self.detected = "vhd"
            self._check_vhd_footer(head)
        elif len(head) >= 0x48 and _u32le(head, 0x40) == VDI_SIGNATURE:
            self.detected = "vdi"
            self._check_vdi(head)
        elif head[:16] in PLOOP_SIGNATURES:
            self.detected = "ploop"
            self._check_ploop(head)
        elif self._iso_descriptor(head) is not None:
            self.detected = "iso"
            self._check_iso(head)
        if not final:
            self._check_early_mismatch()

    def _check_early_mismatch(self) -> None:
        # Refuse before the rest of the image is read, where the head alone decides.
        if not self.require_match:
            return
        declared = self.disk_format
        if self.detected is not None and self.detected != declared and not self._raw_accepts():
            self._mismatch()
        # A fixed VHD is known only at the end; every other format shows in the head.
        if self.detected is None and declared not in RAW_LIKE and declared != "vhd":
            self._mismatch()

    def _raw_accepts(self) -> bool:
        return self.disk_format in RAW_LIKE and self.detected == "iso"

    def _check_match(self) -> None:
        if not self.require_match:
            return
        declared = self.disk_format
        if declared in RAW_LIKE:
            if self.detected is not None and not self._raw_accepts():
                self._mismatch()
            return
        if self.detected != declared:
            self._mismatch()

    def _mismatch(self) -> None:
        found = f"{self.detected} data" if self.detected else "data of no recognised disk format"
        raise FormatError(
            f"Image disk_format is {self.disk_format} but the data is {found}: set the image's "
            "disk_format to the data's real format."
        )

    # -- qcow2 ----------------------------------------------------------------------------
    def _check_qcow2(self, head: bytes) -> None:
        if len(head) < 72:
            raise FormatError("The qcow2 header is truncated.")
        version = _u32be(head, 4)
        if version not in (2, 3):
            raise FormatError(f"qcow2 version {version} is not supported.")
        if _u64be(head, 8) != 0:
            raise FormatError("qcow2 images with a backing file are not allowed.")
        cluster_bits = _u32be(head, 20)
        if not 9 <= cluster_bits <= 21:
            raise FormatError(f"The qcow2 header is invalid (cluster_bits {cluster_bits}).")
        if version == 3:
            if len(head) < 104:
                raise FormatError("The qcow2 header is truncated.")
            incompatible = _u64be(head, 72)
            if incompatible & QCOW2_DATA_FILE:
                raise FormatError("qcow2 images with an external data file are not allowed.")
            if incompatible & ~QCOW2_KNOWN_INCOMPATIBLE:
                raise FormatError(f"qcow2 incompatible features {incompatible:#x} are not supported.")
        self._virtual_size = _u64be(head, 24)

    # -- vmdk -----------------------------------------------------------------------------
    def _check_vmdk_sparse(self, head: bytes) -> None:
        if len(head) < 44:
            raise FormatError("The VMDK header is truncated.")
        self._virtual_size = _u64le(head, 12) * 512
        desc_offset, desc_size = _u64le(head, 28), _u64le(head, 36)
        if desc_offset == 0 or desc_size == 0:
            raise FormatError("The VMDK has no embedded descriptor.")
        if desc_size * 512 > MAX_REGION:
            raise FormatError(f"The VMDK descriptor of {desc_size * 512} bytes is too large.")
        self._add_region(desc_offset * 512, desc_size * 512, self._check_vmdk_descriptor)

    def _check_vmdk_descriptor(self, data: bytes) -> None:
        try:
            text = data.rstrip(b"\x00").decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("The VMDK descriptor is not text.") from None
        create_type = None
        extents = []
        for raw_line in text.splitlines():
            line = raw_line.strip()
            if not line or line.startswith("#"):
                continue
            key = line.split("=", 1)[0].strip()
            first = line.split(None, 1)[0].upper()
            if first in ("RW", "RDONLY", "NOACCESS"):
                extents.append(line)
            elif line.lower().startswith("ddb."):
                continue
            elif "=" in line and key and " " not in key:
                value = line.split("=", 1)[1].strip().strip('"')
                if key.lower() == "createtype":
                    create_type = value
                elif key.lower() == "parentfilenamehint" or (
                    key.lower() == "parentcid" and value.lower() != "ffffffff"
                ):
                    raise FormatError("VMDK images with a parent image are not allowed.")
            else:
                raise FormatError(f"The VMDK descriptor has an unsupported line: {line[:80]!r}.")
        if create_type is None or create_type.lower() not in self.vmdk_allowed_types:
            raise FormatError(
                f"VMDK createType {create_type!r} is not allowed ([image_format] vmdk_allowed_types)."
            )
        sparse = 0
        for line in extents:
            parts = line.split(None, 3)
            kind = parts[2].upper() if len(parts) > 2 else ""
            if kind == "ZERO":
                continue
            name = parts[3].split('"')[1] if len(parts) > 3 and parts[3].count('"') >= 2 else ""
            if kind != "SPARSE" or not name or "/" in name or "\\" in name:
                raise FormatError(f"The VMDK extent {line[:80]!r} refers to data outside the image.")
            sparse += 1
        if sparse != 1:
            raise FormatError("A single-file VMDK must have exactly one sparse extent (itself).")

    # -- vhd / vhdx -----------------------------------------------------------------------
    def _check_vhd_footer(self, footer: bytes) -> None:
        if len(footer) < 64:
            raise FormatError("The VHD footer is truncated.")
        if _u32be(footer, 60) == 4:
            raise FormatError("Differencing VHD images (with a parent image) are not allowed.")
        self._virtual_size = _u64be(footer, 48)

    def _check_vhdx(self, head: bytes) -> None:
        table = head[VHDX_REGION_TABLE:]
        if len(table) < 16 or table[:4] != b"regi":
            if self.pos >= HEAD:
                raise FormatError("The VHDX region table is missing.")
            raise FormatError("The VHDX image is truncated.")
        count = min(_u32le(table, 8), 2047)
        for i in range(count):
            entry = table[16 + 32 * i : 48 + 32 * i]
            if len(entry) < 32:
                break
            if entry[:16] == VHDX_METADATA_REGION:
                base = _u64le(entry, 16)
                self._add_region(
                    base, min(_u32le(entry, 24), 64 * 1024), functools.partial(self._check_vhdx_meta, base)
                )
                return
        raise FormatError("The VHDX image has no metadata region.")

    def _check_vhdx_meta(self, base: int, data: bytes) -> None:
        if data[:8] != b"metadata":
            raise FormatError("The VHDX metadata table is invalid.")
        for i in range(min(_u16le(data, 10), 2047)):
            entry = data[32 + 32 * i : 64 + 32 * i]
            if len(entry) < 32:
                break
            if entry[:16] == VHDX_PARENT_LOCATOR:
                raise FormatError("Differencing VHDX images (with a parent image) are not allowed.")
            if entry[:16] == VHDX_VIRTUAL_DISK_SIZE:
                self._add_region(base + _u32le(entry, 16), 8, self._set_vhdx_size)

    def _set_vhdx_size(self, data: bytes) -> None:
        self._virtual_size = _u64le(data, 0)

    # -- vdi / ploop / iso ----------------------------------------------------------------
    def _check_vdi(self, head: bytes) -> None:
        if len(head) < 0x178:
            raise FormatError("The VDI header is truncated.")
        if _u32le(head, 0x4C) == 4:
            raise FormatError("Differencing VDI images (with a parent image) are not allowed.")
        self._virtual_size = _u64le(head, 0x170)

    def _check_ploop(self, head: bytes) -> None:
        if len(head) < 44:
            raise FormatError("The ploop header is truncated.")
        if head[:16] == PLOOP_SIGNATURES[1]:
            self._virtual_size = _u64le(head, 36) * 512
        else:
            self._virtual_size = _u32le(head, 36) * 512

    @staticmethod
    def _iso_descriptor(head: bytes) -> int | None:
        """Offset of the primary volume descriptor, None if no ISO 9660 signature."""
        found = None
        for offset in ISO_OFFSETS:
            if head[offset + 1 : offset + 6] == b"CD001":
                if head[offset] == 1:
                    return offset
                found = -1 if found is None else found
        return found

    def _check_iso(self, head: bytes) -> None:
        offset = self._iso_descriptor(head)
        if offset is not None and offset >= 0 and len(head) >= offset + 130:
            self._virtual_size = _u32le(head, offset + 80) * _u16le(head, offset + 128)


def for_image(conf, image: dict) -> StreamInspector:
    """The inspector for data of ``image`` under ``[image_format]`` of ``conf``."""
    group = conf.image_format
    return StreamInspector(
        image.get("disk_format"),
        require_match=group.require_image_format_match,
        vmdk_allowed_types=group.vmdk_allowed_types,
    )


class InspectingReader:
    """``read(n)`` over ``reader`` that feeds every buffer to ``inspector`` on its way to the
    store, so a refusal stops the write (the store then removes what it wrote). ``finish``
    gives the verdict after the store has returned (a store may stop at the declared size
    without the final empty read). Other attributes are the wrapped reader's."""

    def __init__(self, reader, inspector: StreamInspector):
        self._reader = reader
        self.inspector = inspector

    def __getattr__(self, name: str):
        return getattr(self._reader, name)

    def read(self, n: int = -1) -> bytes:
        buf = self._reader.read(n)
        try:
            if buf:
                self.inspector.feed(buf)
            else:
                self.inspector.finish()
        except FormatError as exc:
            raise exceptions.InvalidImageData(str(exc)) from None
        return buf

    def finish(self) -> Verdict:
        try:
            return self.inspector.finish()
        except FormatError as exc:
            raise exceptions.InvalidImageData(str(exc)) from None
