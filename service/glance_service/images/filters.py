"""``GET /v2/images`` query string → the normalised list query of ``db/interface.py``.

Every refusal is a 400 (``BadRequest`` subclasses) with Glance's message, decided here
before any data-layer call, so the data API can trust what it receives.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from oslo_utils import timeutils

from glance_service import exceptions

SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")
DEFAULT_SORT_KEY = "created_at"
DEFAULT_SORT_DIR = "desc"
VISIBILITIES = ("community", "public", "private", "shared", "all")
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")

# Columns of the images table a bare ``key=value`` compares for equality; any other key is
# a custom property.
IMAGE_COLUMNS = frozenset(
    {
        "name",
        "id",
        "status",
        "container_format",
        "disk_format",
        "size",
        "virtual_size",
        "min_disk",
        "min_ram",
        "owner",
        "checksum",
        "os_hash_value",
        "os_hash_algo",
        "created_at",
        "updated_at",
        "protected",
        "visibility",
    }
)
_IN_EQ_KEYS = frozenset({"name", "id", "status", "container_format", "disk_format"})
_TIME_KEYS = frozenset({"created_at", "updated_at"})
_TIME_OPS = frozenset({"gt", "gte", "lt", "lte", "neq", "eq"})
_RANGE_COLUMNS = frozenset({"size", "virtual_size", "min_disk", "min_ram"})
_INT_COLUMNS = _RANGE_COLUMNS
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_IN_VALUE_RE = re.compile(
    r"""
    "([^"\\]*(?:\\.[^"\\]*)*)",?   # a double-quoted value (commas allowed inside)
    | ([^,]+),?                    # or anything up to the next comma
    | ,                            # or an empty value between two commas
    """,
    re.VERBOSE,
)


@dataclasses.dataclass
class ListQuery:
    filters: dict
    marker: str | None
    limit: int
    sort_keys: list[str]
    sort_dirs: list[str]


def _is_isotime(value: str) -> bool:
    try:
        timeutils.parse_isotime(value)
    except ValueError:
        return False
    return True


def split_op(expression: str) -> tuple[str, str]:
    """``"gt:2016-01-01"`` → ``("gt", "2016-01-01")``; a bare value (or a bare ISO time,
    whose colons are not an operator) means ``eq``."""
    left, sep, right = expression.partition(":")
    if not sep or _is_isotime(expression):
        return "eq", expression
    return left, right


def _check_quotes(value: str) -> None:
    open_quote = False
    for i, ch in enumerate(value):
        if ch != '"' or (i and value[i - 1] == "\\"):
            continue
        if not open_quote:
            if i and value[i - 1] != ",":
                raise exceptions.InvalidFilter(
                    f"Invalid filter value {value}. There is no comma before opening quotation mark."
                )
        elif i + 1 != len(value) and value[i + 1] != ",":
            raise exceptions.InvalidFilter(
                f"Invalid filter value {value}. There is no comma after closing quotation mark."
            )
        open_quote = not open_quote
    if open_quote:
        raise exceptions.InvalidFilter(f"Invalid filter value {value}. The quote is not closed.")


def split_in_values(value: str) -> list[str]:
    """Values of an ``in:`` filter: comma separated, double quotes protect commas."""
    _check_quotes(value)
    return [quoted or plain for quoted, plain in _IN_VALUE_RE.findall(value)]


def _normalised_time(key: str, value: str) -> str:
    try:
        parsed = timeutils.normalize_time(timeutils.parse_isotime(value))
    except (ValueError, OverflowError):  # OverflowError: in range only before the move to UTC
        raise exceptions.InvalidFilter(
            f'Bad "{key}" query filter format. Use ISO 8601 DateTime notation.'
        ) from None
    return parsed.replace(tzinfo=None).isoformat(timespec="microseconds")


def _bool_param(name: str, value: str, lower: bool) -> bool:
    probe = value.lower() if lower else value
    if probe not in ("true", "false"):
        raise exceptions.InvalidFilter(
            f"Invalid value '{value}' for '{name}' filter. Valid values are 'true' or 'false'."
        )
    return probe == "true"


def limit_param(value: str | None, default: int, maximum: int | None = None) -> int:
    """A list's ``limit`` parameter: ``default`` when absent, else a non-negative integer (400
    otherwise); at most ``maximum`` when given."""
    if value is None:
        limit = default
    else:
        try:
            limit = int(value)
        except ValueError:
            raise exceptions.BadRequest("limit param must be an integer") from None
        if limit < 0:
            raise exceptions.BadRequest("limit param must be positive")
    return limit if maximum is None else min(limit, maximum)


def _sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise exceptions.InvalidSortKey(
            f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}."
        )
    return key


def _sort_dir(value: str) -> str:
    if value not in ("asc", "desc"):
        raise exceptions.BadRequest(f"Invalid sort direction: {value}")
    return value


def _sorting(params: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    names = {k for k, _ in params}
    keys: list[str] = []
    dirs: list[str] = []
    if "sort" in names:
        if "sort_key" in names or "sort_dir" in names:
            raise exceptions.BadRequest("Old and new sorting syntax cannot be combined")
        # Glance reads the last ``sort`` given.
        value = [v for k, v in params if k == "sort"][-1]
        for item in value.strip().split(","):
            key, _sep, direction = item.partition(":")
            keys.append(_sort_key(key.strip()))
            dirs.append(_sort_dir(direction.strip() or DEFAULT_SORT_DIR))
    else:
        keys = [_sort_key(v.strip()) for k, v in params if k == "sort_key"]
        dirs = [_sort_dir(v.strip()) for k, v in params if k == "sort_dir"]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise exceptions.BadRequest("Number of sort dirs does not match the number of sort keys")
    return keys or [DEFAULT_SORT_KEY], dirs or [DEFAULT_SORT_DIR]


def _column_int(key: str, value: str, message: str) -> int:
    """An integer filter value the database can compare (a signed 64-bit integer): past it
    SQLite's driver fails (a 500); no image column can hold such a value anyway."""
    try:
        number = int(value)
    except ValueError:
        raise exceptions.InvalidFilter(message) from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise exceptions.InvalidFilter(f"Invalid value '{value}' for '{key}' filter: out of range.")
    return number


def _conditions(key: str, value: str) -> list[tuple[str, str, object]]:
    if key.endswith("_min") or key.endswith("_max"):
        column = key[:-4]
        number = _column_int(key, value, "Unable to filter on a range with a non-numeric value.")
        if column not in _RANGE_COLUMNS:
            # Glance would fail on an unknown column; answer 400 instead.
            raise exceptions.InvalidFilter(f"Unable to filter on a range of '{column}'.")
        return [(column, "gte" if key.endswith("_min") else "lte", number)]
    if key in _TIME_KEYS:
        op, threshold = split_op(value)
        if op not in _TIME_OPS:
            raise exceptions.InvalidFilter(f"Unable to filter by unknown operator '{op}'.")
        return [(key, op, _normalised_time(key, threshold))]
    if key in _IN_EQ_KEYS:
        op, threshold = split_op(value)
        if op == "in":
            return [(key, "in", split_in_values(threshold))]
        if op == "eq":
            return [(key, "eq", threshold)]
        raise exceptions.InvalidFilter(f"Unable to filter by unknown operator '{op}'.")
    if key in _INT_COLUMNS:
        return [(key, "eq", _column_int(key, value, f"Invalid value '{value}' for '{key}' filter."))]
    return [(key, "eq", value)]


def parse(params: Iterable[tuple[str, str]], limit_default: int = 25, limit_max: int = 1000) -> ListQuery:
    """Turn the query string's (key, value) pairs into a ``ListQuery`` or raise a 400."""
    pairs = list(params)
    limit = limit_default
    marker = None
    member_status = "accepted"
    visibility = None
    os_hidden = False
    tags: list[str] = []
    conditions: list[tuple[str, str, object]] = []
    # Later values win for single-valued parameters, as in Glance (``params.pop``).
    singles: dict[str, str] = {}
    for key, value in pairs:
        if key == "tag":
            tags.append(value.strip())
        elif key not in ("sort", "sort_key", "sort_dir"):
            singles[key] = value
    for key, value in singles.items():
        if key == "limit":
            limit = limit_param(value, limit_default, limit_max)
        elif key == "marker":
            marker = value
        elif key == "member_status":
            if value not in MEMBER_STATUSES:
                raise exceptions.InvalidFilter(f"Invalid status: {value}")
            member_status = value
        elif key == "visibility":
            if not value:
                continue
            if value not in VISIBILITIES:
                raise exceptions.InvalidFilter(f"Invalid visibility value: {value}")
            visibility = value  # "all" keeps other projects' community images (absent: not)
        elif key == "changes-since":
            if not value:
                continue
            raise exceptions.InvalidFilter('The "changes-since" filter is no longer available on v2.')
        elif key == "os_hidden":
            os_hidden = _bool_param(key, value, lower=True)
        elif key == "protected":
            conditions.append(("protected", "eq", _bool_param(key, value, lower=False)))
        elif key in ("checksum", "os_hash_value", "owner", "os_hash_algo"):
            conditions.append((key, "eq", value))
        else:
            conditions.extend(_conditions(key, value))
    sort_keys, sort_dirs = _sorting(pairs)
    filters = {
        "conditions": conditions,
        "tags": tags,
        "visibility": visibility,
        "member_status": member_status,
        "os_hidden": os_hidden,
    }
    return ListQuery(filters=filters, marker=marker, limit=limit, sort_keys=sort_keys, sort_dirs=sort_dirs)
