"""Helpers shared by the end-to-end tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path


def unique_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def parse_table(text: str) -> dict[str, str]:
    """glanceclient's ``| Property | Value |`` table as a dict (continuation lines are joined)."""
    out: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|", 1)]
        if len(cells) != 2 or cells == ["Property", "Value"]:
            continue
        if cells[0]:
            key = cells[0]
            out[key] = cells[1]
        elif key:
            out[key] += cells[1]
    return out


def qcow2_bytes(virtual_size: int = 16 * 1024 * 1024) -> bytes:
    """A minimal valid qcow2 v3 image, as ``qemu-img create -f qcow2`` lays it out.

    Four 64 KiB clusters: header, refcount table, one refcount block, the L1 table (one L1 entry
    covers 512 MiB; all entries empty, so the disk reads as zeros). Refcounts of the four clusters
    are 1. No backing file, no external data file: format inspection accepts it.
    """
    cluster = 1 << 16
    l1_entries = max(1, -(-virtual_size // (cluster * (cluster // 8))))
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        b"QFI\xfb",  # magic
        3,  # version
        0,  # backing_file_offset
        0,  # backing_file_size
        16,  # cluster_bits
        virtual_size,
        0,  # crypt_method
        l1_entries,
        3 * cluster,  # l1_table_offset
        1 * cluster,  # refcount_table_offset
        1,  # refcount_table_clusters
        0,  # nb_snapshots
        0,  # snapshots_offset
        0,  # incompatible_features
        0,  # compatible_features
        0,  # autoclear_features
        4,  # refcount_order: 16-bit refcounts
        104,  # header_length
    )
    header += struct.pack(">II", 0, 0)  # end of header extensions
    image = bytearray(4 * cluster)
    image[: len(header)] = header
    struct.pack_into(">Q", image, 1 * cluster, 2 * cluster)  # refcount table -> block at cluster 2
    for i in range(4):
        struct.pack_into(">H", image, 2 * cluster + 2 * i, 1)
    return bytes(image)


@dataclass(frozen=True)
class ImageFile:
    path: Path
    data: bytes

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    @property
    def sha512(self) -> str:
        return hashlib.sha512(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)
