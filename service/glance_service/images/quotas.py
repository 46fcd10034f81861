"""Quotas and limits, decided in one place (reference section 6).

Counts: ``image_property_quota``, ``image_tag_quota``, ``image_member_quota``,
``image_location_quota`` (a negative value is unlimited; ``os_glance_*`` properties do not
count). Storage: ``image_size_cap`` per image and ``user_storage_quota`` per project (a
string like ``500MB`` or ``1G``, binary units, ``0`` unlimited), checked before an upload
(413 when the project is already at its quota or the declared size does not fit), while the
data streams (the body is cut at the remaining quota) and after it (a concurrent upload of
the same project may have used the room meanwhile). Every refusal is a 413 that names the
limit. The options themselves are declared once, in ``api/options.py``.
"""

from __future__ import annotations

import re

from oslo_config import cfg

from glance_service import exceptions
from glance_service.context import RequestContext

RESERVED_PREFIX = "os_glance"
_STORAGE = re.compile(r"^\s*(\d+)\s*([KMGT]?)B?\s*$", re.IGNORECASE)
_UNIT_POWER = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}


def _option(conf: cfg.ConfigOpts, name: str, default):
    try:
        value = getattr(conf, name)
    except (AttributeError, cfg.NoSuchOptError):
        return default
    return default if value is None else value


# -- counts --------------------------------------------------------------------------------------
def check_count(what: str, count: int, quota: int) -> None:
    """413 when ``count`` items exceed ``quota`` (negative: unlimited)."""
    if 0 <= quota < count:
        raise exceptions.LimitExceeded(
            f"Maximum number of {what} exceeded: attempted {count}, maximum {quota}."
        )


def counted_properties(properties: dict) -> int:
    """Custom properties that count toward ``image_property_quota`` (``os_glance_*`` do not)."""
    return sum(1 for key in properties if not key.startswith(RESERVED_PREFIX))


def check_properties(conf: cfg.ConfigOpts, new: dict, old: dict | None = None) -> None:
    """On create (``old`` None) and on updates that add properties: Glance lets an image
    already over a lowered quota keep, replace or remove its properties, not add more."""
    count = counted_properties(new)
    if old is not None and count <= counted_properties(old):
        return
    check_count("image properties", count, _option(conf, "image_property_quota", 128))


def check_tags(conf: cfg.ConfigOpts, new: list | set, old: list | set | None = None) -> None:
    count = len(set(new))
    if old is not None and count <= len(set(old)):
        return
    check_count("image tags", count, _option(conf, "image_tag_quota", 128))


def check_members(conf: cfg.ConfigOpts, current: int) -> None:
    """Before adding one member to an image that has ``current`` members."""
    check_count("image members", current + 1, _option(conf, "image_member_quota", 128))


def check_locations(conf: cfg.ConfigOpts, count: int) -> None:
    """``count``: the number of locations the image would have."""
    check_count("image locations", count, _option(conf, "image_location_quota", 10))


# -- storage ---------------------------------------------------------------------------------------
def parse_storage(value: str | int | None) -> int:
    """``user_storage_quota`` in bytes (0 = unlimited): digits, optional K/M/G/T, optional B."""
    if value is None or value == "":
        return 0
    if isinstance(value, int):
        return max(value, 0)
    found = _STORAGE.match(value)
    if found is None:
        raise ValueError(f"Invalid user_storage_quota {value!r}: use e.g. 500MB, 1G, 1099511627776 or 0.")
    return int(found.group(1)) * 1024 ** _UNIT_POWER[found.group(2).upper()]


def storage_quota(conf: cfg.ConfigOpts) -> int:
    """0 (unlimited) under ``use_keystone_limits``: upstream then ignores user_storage_quota."""
    if _option(conf, "use_keystone_limits", False):
        return 0
    return parse_storage(_option(conf, "user_storage_quota", "0"))


def remaining_storage(conf: cfg.ConfigOpts, data, ctx: RequestContext, owner: str | None) -> int | None:
    """Bytes ``owner`` may still store (zero or negative when full or over): None when
    unlimited, or for an image without an owner."""
    quota = storage_quota(conf)
    if quota <= 0 or owner is None:
        return None
    return quota - data.image_storage_usage(ctx, owner)


def check_upload_size(size: int | None, remaining: int | None, quota: int) -> None:
    """Before an upload, like Glance: a declared ``size`` must fit in the ``remaining`` room;
    without one (chunked) only a project with no room left at all is refused (the stream is
    cut at the quota instead)."""
    if remaining is None:
        return
    if size is None:
        if remaining <= 0:
            raise exceptions.StorageQuotaFull(
                f"The storage quota of {quota} bytes is full: {quota - remaining} bytes are used "
                "(user_storage_quota)."
            )
        return
    if size > remaining:
        raise exceptions.StorageQuotaFull(
            f"The image of {size} bytes exceeds the remaining storage quota of {remaining} bytes "
            f"(user_storage_quota {quota} bytes)."
        )


class QuotaReader:
    """The upload body, cut at the project's remaining storage: reading past it is a 413.

    Other attributes (e.g. ``consumed``) are the wrapped reader's.
    """

    def __init__(self, reader, remaining: int, quota: int):
        self._reader = reader
        self._remaining = remaining
        self._quota = quota
        self.read_bytes = 0

    def read(self, n: int) -> bytes:
        buf = self._reader.read(n)
        self.read_bytes += len(buf)
        if self.read_bytes > self._remaining:
            raise exceptions.StorageQuotaFull(
                f"The image exceeds the remaining storage quota of {self._remaining} bytes "
                f"(user_storage_quota {self._quota} bytes)."
            )
        return buf

    def __getattr__(self, name: str):
        return getattr(self._reader, name)


def limit_upload(conf: cfg.ConfigOpts, reader, remaining: int | None):
    """``reader`` cut at ``remaining`` bytes (unchanged when unlimited)."""
    if remaining is None:
        return reader
    return QuotaReader(reader, max(remaining, 0), storage_quota(conf))


def check_after_upload(conf: cfg.ConfigOpts, data, ctx: RequestContext, owner: str | None, size: int) -> None:
    """After the data is stored, before it is recorded: the project's other images plus this
    one must still fit (another upload of the same project may have finished meanwhile)."""
    quota = storage_quota(conf)
    if quota <= 0 or owner is None:
        return
    used = data.image_storage_usage(ctx, owner)
    if used + size > quota:
        raise exceptions.StorageQuotaFull(
            f"The image of {size} bytes does not fit in the storage quota of {quota} bytes: "
            f"{used} bytes are used by the project's other images (user_storage_quota)."
        )
