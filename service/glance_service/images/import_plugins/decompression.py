"""``image_decompression``: staged data that is a compressed file is replaced by what it holds
(upstream's plugin: a zip archive of exactly one file, gzip; upstream also reads LHA archives
when the optional ``lhafile`` library is there and fails the import otherwise, as here). This
service also reads xz and lzma, which the issue asks for and Python reads without a library.
Other content passes unchanged, and so does an image whose ``container_format`` is
``compressed`` (meant to stay compressed). What comes out is capped at ``image_size_cap``."""

from __future__ import annotations

import gzip
import lzma
import os
import zipfile

from oslo_log import log as logging

from glance_service.images.import_plugins import PluginError
from glance_service.images.import_plugins.files import partial_beside, replace

LOG = logging.getLogger(__name__)

BLOCK = 1024 * 1024
# (offset, magic) -> kind; upstream's three, then xz and lzma ("alone" format, default props).
MAGIC = (
    (0, b"PK\x03\x04", "zip"),
    (2, b"-lh", "lha"),
    (0, b"\x1f\x8b\x08", "gzip"),
    (0, b"\xfd7zXZ\x00", "xz"),
    (0, b"\x5d\x00\x00", "lzma"),
)
MAX_HEADER = max(offset + len(magic) for offset, magic, _ in MAGIC)


def detect(head: bytes) -> str | None:
    for offset, magic, kind in MAGIC:
        if head.startswith(magic, offset):
            return kind
    return None


def _copy(src, dst, cap: int, beat) -> None:
    total = 0
    while True:
        beat()
        buf = src.read(BLOCK)
        if not buf:
            return
        total += len(buf)
        if cap and total > cap:
            raise PluginError(f"The decompressed image is larger than image_size_cap ({cap} bytes).")
        dst.write(buf)


def _open(kind: str, path: str):
    if kind == "zip":
        archive = zipfile.ZipFile(path)  # noqa: SIM115 - closed with the member by the caller
        names = archive.namelist()
        if len(names) != 1:
            archive.close()
            raise PluginError("Archive contains more than one file.")
        return archive, archive.open(names[0])
    if kind == "gzip":
        return None, gzip.open(path, "rb")
    if kind in ("xz", "lzma"):
        fmt = lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE
        return None, lzma.open(path, "rb", format=fmt)
    raise PluginError("No lhafile available.")  # upstream's message without the library


def decompress(path: str, kind: str, cap: int, beat=lambda: None) -> None:
    """Replace the file at ``path`` by its decompressed content (nothing left on failure)."""
    archive, member = _open(kind, path)
    try:
        with partial_beside(path, "uc") as (tmp, fileobj):
            try:
                _copy(member, fileobj, cap, beat)
            except PluginError:
                raise
            except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as exc:
                raise PluginError(f"The image could not be decompressed ({kind}): {exc}") from None
            replace(tmp, path, fileobj)
    finally:
        member.close()
        if archive is not None:
            archive.close()


def run(job) -> None:
    if job.get("container_format") == "compressed":
        return
    with open(job.path, "rb") as fileobj:
        head = fileobj.read(MAX_HEADER)
    kind = detect(head)
    if kind is None:
        return
    try:
        decompress(job.path, kind, job.conf.image_size_cap, job.beat)
    except zipfile.BadZipFile as exc:
        raise PluginError(f"The image could not be decompressed (zip): {exc}") from None
    job.data_changed = True
    LOG.info(
        "Import of image %s: %s data decompressed to %d bytes", job.image_id, kind, os.path.getsize(job.path)
    )
