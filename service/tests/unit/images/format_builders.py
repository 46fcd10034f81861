"""Hand-built headers of every disk format (for the format inspection tests)."""

from __future__ import annotations

import struct
import uuid

MiB = 1024 * 1024

VHDX_REGION_TABLE = 192 * 1024
VHDX_METADATA_REGION = uuid.UUID("8b7ca206-4790-4b9a-b8fe-575f050f886e").bytes_le
VHDX_VIRTUAL_DISK_SIZE = uuid.UUID("2fa54224-cd1b-4876-b211-5dbed83bf4b8").bytes_le
VHDX_PARENT_LOCATOR = uuid.UUID("a8d35f2d-b30b-454d-abf7-d3d84834ab0c").bytes_le
VDI_SIGNATURE = 0xBEDA107F
PLOOP_SIGNATURES = (b"WithoutFreeSpace", b"WithouFreSpacExt")


def qcow2(virtual_size=10 * MiB, *, version=3, backing=False, data_file=False, length=4 * 65536) -> bytes:
    header = struct.pack(
        ">4sIQIIQIIQQIIQ",
        b"QFI\xfb",
        version,
        512 if backing else 0,  # backing_file_offset
        9 if backing else 0,  # backing_file_size
        16,  # cluster_bits
        virtual_size,
        0,
        1,
        3 * 65536,
        65536,
        1,
        0,
        0,
    )
    if version == 3:
        header += struct.pack(">QQQII", 4 if data_file else 0, 0, 0, 4, 104)
    image = bytearray(length)
    image[: len(header)] = header
    if backing:
        image[512:521] = b"/etc/shad"
    return bytes(image)


def vmdk(descriptor: str, *, capacity_sectors=20480, desc_sector=1, length=None, footer=None) -> bytes:
    """A sparse VMDK; ``footer`` (a gd offset) makes it streamOptimized-style: the header's gd
    offset says "at the end" and the stream ends with footer marker, footer and end marker."""
    desc = descriptor.encode()
    desc_sectors = -(-len(desc) // 512)
    header = struct.pack("<4sIIQQQQ", b"KDMV", 1, 3, capacity_sectors, 128, desc_sector, desc_sectors)
    length = length or (desc_sector + desc_sectors + 16) * 512
    image = bytearray(length)
    image[: len(header)] = header
    image[desc_sector * 512 : desc_sector * 512 + len(desc)] = desc
    if footer is not None:
        struct.pack_into("<Q", image, 56, 0xFFFFFFFFFFFFFFFF)
        tail = bytearray(1536)
        struct.pack_into("<QII", tail, 0, 1, 0, 3)  # footer marker
        tail[512 : 512 + len(header)] = header
        struct.pack_into("<Q", tail, 512 + 56, footer)
        image += tail  # then the end-of-stream marker: all zero
    return bytes(image)


def descriptor(create_type="monolithicSparse", extents=('RW 20480 SPARSE "disk.vmdk"',), extra=()) -> str:
    lines = [
        "# Disk DescriptorFile",
        "version=1",
        "CID=12345678",
        "parentCID=ffffffff",
        f'createType="{create_type}"',
        *extra,
        "# Extent description",
        *extents,
        "",
        "# The Disk Data Base",
        'ddb.virtualHWVersion = "4"',
        'ddb.adapterType = "ide"',
    ]
    return "\n".join(lines) + "\n"


def vhd_footer(size=8 * MiB, disk_type=3) -> bytes:
    footer = bytearray(512)
    footer[0:8] = b"conectix"
    struct.pack_into(">Q", footer, 40, size)
    struct.pack_into(">Q", footer, 48, size)
    struct.pack_into(">I", footer, 60, disk_type)
    return bytes(footer)


def vhdx(size=64 * MiB, *, parent=False) -> bytes:
    meta_offset = 1 * MiB
    image = bytearray(meta_offset + 128 * 1024)
    image[0:8] = b"vhdxfile"
    table = VHDX_REGION_TABLE
    image[table : table + 4] = b"regi"
    struct.pack_into("<I", image, table + 8, 2)
    bat = uuid.UUID("2dc27766-f623-4200-9d64-115e9bfd4a08").bytes_le
    image[table + 16 : table + 32] = bat
    struct.pack_into("<QII", image, table + 32, 3 * MiB, MiB, 1)
    image[table + 48 : table + 64] = VHDX_METADATA_REGION
    struct.pack_into("<QII", image, table + 64, meta_offset, MiB, 1)
    image[meta_offset : meta_offset + 8] = b"metadata"
    entries = [(VHDX_VIRTUAL_DISK_SIZE, 65536)]
    if parent:
        entries.append((VHDX_PARENT_LOCATOR, 65536 + 8))
    struct.pack_into("<H", image, meta_offset + 10, len(entries))
    for i, (guid, offset) in enumerate(entries):
        base = meta_offset + 32 + 32 * i
        image[base : base + 16] = guid
        struct.pack_into("<II", image, base + 16, offset, 8)
    struct.pack_into("<Q", image, meta_offset + 65536, size)
    return bytes(image)


def vdi(size=32 * MiB, image_type=1) -> bytes:
    image = bytearray(4096)
    image[0:40] = b"<<< Oracle VM VirtualBox Disk Image >>>\n"
    struct.pack_into("<III", image, 0x40, VDI_SIGNATURE, 0x00010001, 400)
    struct.pack_into("<I", image, 0x4C, image_type)
    struct.pack_into("<Q", image, 0x170, size)
    return bytes(image)


def iso(blocks=300, block_size=2048, *, boot_record_first=False, mbr=False) -> bytes:
    image = bytearray(64 * 1024)
    if mbr:
        image[510:512] = b"\x55\xaa"
    pvd = 34816 if boot_record_first else 32768
    if boot_record_first:
        image[32768:32774] = b"\x00CD001"
    image[pvd : pvd + 7] = b"\x01CD001\x01"
    struct.pack_into("<I", image, pvd + 80, blocks)
    struct.pack_into("<H", image, pvd + 128, block_size)
    return bytes(image)


def ploop(sectors=4096, v2=True) -> bytes:
    image = bytearray(4096)
    image[0:16] = PLOOP_SIGNATURES[1 if v2 else 0]
    if v2:
        struct.pack_into("<Q", image, 36, sectors)
    else:
        struct.pack_into("<I", image, 36, sectors)
    return bytes(image)


def mbr(partitions=((0x83, 2048, 8192),), length=64 * 1024) -> bytes:
    """A disk with an MBR partition table: (type, start lba, sectors) per partition."""
    image = bytearray(length)
    for i, (kind, start, sectors) in enumerate(partitions):
        struct.pack_into("<B3BB3BII", image, 446 + 16 * i, 0, 0, 2, 0, kind, 0, 0, 0, start, sectors)
    image[510:512] = b"\x55\xaa"
    return bytes(image)


def luks(payload_sectors=4096, length=64 * 1024) -> bytes:
    """A LUKS1 header (no key slot: enough to be recognised)."""
    image = bytearray(length)
    header = struct.pack(
        ">6sH32s32s32sII", b"LUKS\xba\xbe", 1, b"aes", b"xts-plain64", b"sha256", payload_sectors, 64
    )
    image[: len(header)] = header
    return bytes(image)
