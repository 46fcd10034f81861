"""Format inspection of image data while it streams: an adapter over oslo.utils' inspectors.

A crafted qcow2 or vmdk header can make a hypervisor (or ``qemu-img``) open files of the host:
a qcow2 backing file or external data file, a VMDK extent naming another file, a differencing
VHD/VHDX/VDI with its parent. So every upload, stage and import is fed through a
``StreamInspector`` as it streams. Detection, safety checks and virtual sizes are
``oslo_utils.imageutils.format_inspector``'s (what upstream Glance uses and what gets the
security fixes); this module runs all of its inspectors side by side on the stream, as its
``InspectWrapper`` does, and adds only what our behaviour needs beyond it:

* stricter checks on top of oslo's: a VMDK must be one file (a single SPARSE extent, no parent,
  a createType in ``[image_format] vmdk_allowed_types``, not a bare descriptor); a differencing
  VHD, VHDX or VDI is refused; data recognised as two formats (other than an ISO with a
  partition table) is refused; a recognised header that cannot be parsed or checked is refused
  whatever the label;
* formats oslo does not know or reads only at the start: ploop, a fixed VHD (its footer is at
  the end only), an ISO whose primary volume descriptor is not the first;
* speed: the stream is fed in pieces of at least 256 KiB (detection does not depend on the
  client's chunking; oslo's cost is per call) and an inspector is fed no more once it has
  decided, so past the headers a MiB usually costs a length and a 512-byte tail.

The verdict, checked against the declared ``disk_format``:

* a format the data is recognised as is checked for safety whatever was declared (a qcow2
  with a backing file is refused even when labelled raw);
* with ``require_match`` the data must be the declared format (raw, and ami/ari/aki, which
  are raw disks: anything that is not another container format; ISO 9660 content, partition
  tables and LUKS volumes are raw to a hypervisor and stay allowed);
* zero bytes are accepted for any format (Nova activates empty snapshot images that way);
* ``virtual_size`` comes from the header of the declared format when it matched (raw: the
  data size).

Errors are ``FormatError`` with a message for the API caller (the API answers 415).
"""

from __future__ import annotations

import dataclasses
import struct
import uuid

from oslo_utils.imageutils import format_inspector as oslo

from glance_service import exceptions

# The inspectors still deciding get the stream in pieces of at least this size (the first
# piece holds every header; oslo's per-call cost is then paid once per 256 KiB).
HEAD = 256 * 1024
TAIL = 512

RAW_LIKE = frozenset({"raw", "ami", "ari", "aki"})
RAW_CONTENT = frozenset({"iso", "gpt", "luks"})  # what a raw disk may contain
DEFAULT_VMDK_TYPES = ("streamOptimized", "monolithicSparse")
VHDX_PARENT_LOCATOR = uuid.UUID("a8d35f2d-b30b-454d-abf7-d3d84834ab0c").bytes_le
PLOOP_SIGNATURES = (b"WithoutFreeSpace", b"WithouFreSpacExt")


class FormatError(Exception):
    """The data does not match its declared format, or is unsafe to keep."""


@dataclasses.dataclass
class Verdict:
    size: int
    detected: str | None  # the container format recognised in the data (None: raw)
    virtual_size: int | None


def _refuse(message: str):
    raise oslo.SafetyViolation(message)


# -- what we add to oslo's inspectors -------------------------------------------------------------
class _NoParent:
    """Adds a ``parent`` safety check to an oslo inspector: a differencing image is refused."""

    def _initialize(self) -> None:
        super()._initialize()
        self.add_safety_check(oslo.SafetyCheck("parent", self._no_parent))

    def _no_parent(self) -> None:
        if self._has_parent():
            _refuse(f"Differencing {self.NAME.upper()} images (with a parent image) are not allowed.")


class _VHD(_NoParent, oslo.VHDInspector):
    def _has_parent(self) -> bool:
        return struct.unpack_from(">I", self.region("header").data, 60)[0] == 4  # disk type


class _VHDX(_NoParent, oslo.VHDXInspector):
    def _has_parent(self) -> bool:
        meta = self.region("metadata").data if self.has_region("metadata") else b""
        count = struct.unpack_from("<H", meta, 10)[0] if len(meta) >= 12 else 0
        return any(meta[32 + 32 * i : 48 + 32 * i] == VHDX_PARENT_LOCATOR for i in range(count))


class _VDI(_NoParent, oslo.VDIInspector):
    def _has_parent(self) -> bool:
        return struct.unpack_from("<I", self.region("header").data, 0x4C)[0] == 4  # image type


VMDK_DESCRIPTOR_FILE = (
    "A VMDK descriptor file refers to its data in other files: upload a single-file "
    "(monolithicSparse or streamOptimized) VMDK."
)


class _VMDK(oslo.VMDKInspector):
    allowed_types: frozenset[str] = frozenset(t.lower() for t in DEFAULT_VMDK_TYPES)

    def _initialize(self) -> None:
        super()._initialize()
        self.add_safety_check(oslo.SafetyCheck("single_file", self._single_file))

    def _single_file(self) -> None:
        if not self.has_region("header"):
            _refuse(VMDK_DESCRIPTOR_FILE)
        if self.vmdktype not in self.allowed_types:
            _refuse(f"VMDK createType {self.vmdktype!r} is not allowed ([image_format] vmdk_allowed_types).")
        sparse = 0
        for line in (self.desc_text or "").splitlines():
            words = line.strip().split(None, 3)
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip().strip('"')
            if key == "parentfilenamehint" or (key == "parentcid" and value != "ffffffff"):
                _refuse("VMDK images with a parent image are not allowed.")
            if not words or words[0] not in ("rw", "rdonly", "noaccess") or words[2:3] == ["zero"]:
                continue
            name = words[3].split('"')[1] if len(words) > 3 and words[3].count('"') >= 2 else ""
            if words[2:3] != ["sparse"] or not name or "/" in name or "\\" in name:
                _refuse(f"The VMDK extent {line.strip()[:80]!r} refers to data outside the image.")
            sparse += 1
        if sparse != 1:
            _refuse("A single-file VMDK must have exactly one sparse extent (itself).")


class _ISO(oslo.ISOInspector):
    """Also reads the size when a boot record comes before the primary volume descriptor."""

    def _initialize(self) -> None:
        super()._initialize()
        self.new_region("more", oslo.CaptureRegion(34 * 1024, 4 * 1024))

    @property
    def virtual_size(self) -> int:
        if not self.format_match:
            return 0
        descriptors = bytes(self.region("header").data) + bytes(self.region("more").data)
        for at in range(0, len(descriptors) - 131, 2048):
            if descriptors[at : at + 6] == b"\x01CD001":
                blocks, block_size = (
                    struct.unpack_from("<I", descriptors, at + 80)[0],
                    struct.unpack_from("<H", descriptors, at + 128)[0],
                )
                return blocks * block_size
        return 0


class _Ploop(oslo.FileInspector):
    """Virtuozzo ploop (a disk_format Glance lists; oslo has no inspector for it)."""

    NAME = "ploop"

    def _initialize(self) -> None:
        self.new_region("header", oslo.CaptureRegion(0, 48))
        self.add_safety_check(oslo.SafetyCheck.null())

    @property
    def format_match(self) -> bool:
        return self.region("header").complete and self.region("header").data[:16] in PLOOP_SIGNATURES

    @property
    def virtual_size(self) -> int:
        if not self.format_match:
            return 0
        header = self.region("header").data
        v2 = header[:16] == PLOOP_SIGNATURES[1]
        return struct.unpack_from("<Q" if v2 else "<I", header, 36)[0] * 512


INSPECTORS: dict[str, type[oslo.FileInspector]] = {
    **{name: cls for name, cls in oslo.ALL_FORMATS.items() if name != "raw"},
    "vhd": _VHD,
    "vhdx": _VHDX,
    "vdi": _VDI,
    "vmdk": _VMDK,
    "iso": _ISO,
    "ploop": _Ploop,
}

# What a failed oslo check means, for the API caller (our own checks carry their message).
MESSAGES = {
    "backing_file": lambda ins, failure: "qcow2 images with a backing file are not allowed.",
    "data_file": lambda ins, failure: "qcow2 images with an external data file are not allowed.",
    "unknown_features": lambda ins, failure: (
        f"qcow2 version {ins.qemu_header_info.get('version')} or its incompatible features are not supported."
    ),
    "banned": lambda ins, failure: (
        f"{ins.NAME.upper()} images are not supported: no hypervisor here reads them safely."
    ),
    "mbr": lambda ins, failure: f"The partition table is invalid: {failure}.",
}


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
        self.pos = 0
        self._pending: list[bytes] = []  # buffers not yet handed to the live inspectors
        self._pending_size = 0
        self._tail = b""
        self._start = b""  # the first 64 bytes
        self._finished: Verdict | None = None
        self._decided = False
        self.inspectors = [cls() for cls in INSPECTORS.values()]
        for ins in self.inspectors:
            if isinstance(ins, _VMDK):
                ins.allowed_types = frozenset(t.lower() for t in vmdk_allowed_types)
        self.live = list(self.inspectors)  # those still fed
        self.errors: dict[str, Exception] = {}  # inspectors that could not parse the data

    # -- streaming ------------------------------------------------------------------------
    def feed(self, buf: bytes) -> None:
        if not buf:
            return
        if self.pos < 64:
            self._start = (self._start + bytes(buf[:64]))[:64]
        self.pos += len(buf)
        self._tail = (self._tail + bytes(buf[-TAIL:]))[-TAIL:]
        if not self.live:
            return
        if self._pending or len(buf) < HEAD:
            self._pending.append(bytes(buf))
            self._pending_size += len(buf)
            if self._pending_size < HEAD:
                return
            buf, self._pending, self._pending_size = b"".join(self._pending), [], 0
        self._eat(buf)
        if not self.live and not self._decided:
            self._decide(final=False)

    def _eat(self, chunk: bytes) -> None:
        for ins in list(self.live):
            try:
                ins.eat_chunk(chunk)
                done = ins.complete
            except Exception as exc:  # oslo raises what it likes on data it cannot parse
                self.errors[ins.NAME] = exc
                done = True
            if done:
                self.live.remove(ins)

    def finish(self) -> Verdict:
        """The verdict once the stream has ended (idempotent)."""
        if self._finished is not None:
            return self._finished
        if self.pos == 0:
            # Nova activates empty snapshot images with zero bytes (and disk_format qcow2).
            self._finished = Verdict(0, None, None)
            return self._finished
        if self._pending and self.live:
            self._eat(b"".join(self._pending))
        self._pending = []
        for ins in self.inspectors:
            ins.finish()
        detected = self._decide(final=True)
        virtual_size = None
        if detected is not None and detected.NAME == self.disk_format:
            virtual_size = detected.virtual_size or None
        elif self.disk_format in RAW_LIKE and (detected is None or detected.NAME in RAW_CONTENT):
            virtual_size = self.pos
        self._finished = Verdict(self.pos, detected and detected.NAME, virtual_size)
        return self._finished

    # -- the verdict ----------------------------------------------------------------------
    def _decide(self, final: bool) -> oslo.FileInspector | None:
        """The inspector of the format the data is (None: raw); raises if refused."""
        self._decided = True
        matches = {}
        for ins in self.inspectors:
            try:
                if ins.format_match:
                    matches[ins.NAME] = ins
            except Exception as exc:
                self.errors.setdefault(ins.NAME, exc)
        for name, exc in self.errors.items():
            if name in matches:
                raise FormatError(f"The {name} header cannot be read safely: {exc}")
        if not matches and self._start.lower().lstrip().startswith(b"# disk descriptorfile"):
            # qemu reads it as a VMDK even where oslo does not (NUL bytes after the text).
            raise FormatError(VMDK_DESCRIPTOR_FILE)
        if matches.keys() == {"iso", "gpt"}:
            del matches["gpt"]  # a bootable ISO may have a partition table in front (upstream)
        if len(matches) > 1:
            raise FormatError(f"The data is recognised as several formats ({', '.join(sorted(matches))}).")
        detected = next(iter(matches.values()), None)
        if detected is None and final and self._tail[:8] == b"conectix" and self.pos >= TAIL:
            detected = _VHD()  # a fixed VHD: its footer is at the end only
            detected.eat_chunk(self._tail)
            detected.finish()
        if detected is not None:
            self._safety_check(detected)
        if self.require_match:
            self._check_match(detected, final)
        return detected

    def _safety_check(self, ins: oslo.FileInspector) -> None:
        try:
            ins.safety_check()
        except oslo.ImageFormatError as exc:
            raise FormatError(f"The {ins.NAME} data is truncated or its header invalid ({exc}).") from None
        except oslo.SafetyCheckFailed as exc:
            reasons = []
            for name, failure in exc.failures.items():
                reasons.append(MESSAGES[name](ins, failure) if name in MESSAGES else str(failure))
            raise FormatError(" ".join(dict.fromkeys(reasons))) from None

    def _check_match(self, detected: oslo.FileInspector | None, final: bool) -> None:
        declared, name = self.disk_format, detected and detected.NAME
        if declared in RAW_LIKE:
            ok = name is None or name in RAW_CONTENT
        else:
            # A fixed VHD is known only at the end; every other format shows in the head.
            ok = name == declared or (not final and name is None and declared == "vhd")
        if ok:
            return
        found = f"{name} data" if name else "data of no recognised disk format"
        own = next((i for i in self.inspectors if i.NAME == declared), None)
        if own is not None and name is None and not own.complete:
            found += f" (too short or truncated for {declared})"
        elif declared in self.errors and name is None:
            found += f" ({declared}: {self.errors[declared]})"
        raise FormatError(
            f"Image disk_format is {declared} but the data is {found}: set the image's "
            "disk_format to the data's real format."
        )


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
