"""API options read by the image handlers and by the data path (``api/image_data.py``).

Glance's names, meanings and defaults, declared once here so both sides share one
definition (registering them twice with different help would be an oslo.config error).
"""

from __future__ import annotations

from oslo_config import cfg

from glance_service.common.registrar import registrar

paging_opts = [
    cfg.IntOpt(
        "limit_param_default",
        default=25,
        min=1,
        help="Number of images a list returns when the request gives no 'limit'.",
    ),
    cfg.IntOpt(
        "api_limit_max",
        default=1000,
        min=1,
        help="Largest number of images one list request returns, whatever 'limit' asks for.",
    ),
]

quota_opts = [
    cfg.IntOpt(
        "image_member_quota",
        default=128,
        help="Maximum number of members per image. Negative: unlimited.",
    ),
    cfg.IntOpt(
        "image_property_quota",
        default=128,
        help="Maximum number of custom properties per image (os_glance_* excluded). Negative: unlimited.",
    ),
    cfg.IntOpt("image_tag_quota", default=128, help="Maximum number of tags per image. Negative: unlimited."),
    cfg.IntOpt(
        "image_location_quota",
        default=10,
        help="Maximum number of locations per image. Negative: unlimited.",
    ),
]

data_opts = [
    cfg.IntOpt(
        "image_size_cap",
        default=1099511627776,
        min=1,
        max=9223372036854775808,
        help="Largest image, in bytes, an upload may store (default 1 TiB); a larger upload gets 413 "
        "and its image returns to 'queued'.",
    ),
    cfg.StrOpt(
        "user_storage_quota",
        default="0",
        regex=r"^\d+(?:K|M|G|T)?B?$",
        help="Total image data a project may store, e.g. '500GB' (binary units: K, M, G, T; "
        "bytes without a unit). '0' means unlimited.",
    ),
    cfg.StrOpt(
        "hashing_algorithm",
        default="sha512",
        help="hashlib algorithm for the image's os_hash_value (recorded in os_hash_algo).",
    ),
    cfg.ListOpt(
        "enabled_import_methods",
        # Glance's declaration and default. glance-download (pulls from another region's Glance
        # through the caller's catalog) is off by default, as upstream.
        item_type=cfg.types.String(
            choices=["glance-direct", "web-download", "copy-image", "glance-download"]
        ),
        bounds=True,
        default=["glance-direct", "web-download", "copy-image"],
        help="Interoperable import methods announced in the OpenStack-image-import-methods header and "
        "in /v2/info/import, e.g. [glance-direct, web-download, copy-image, glance-download] "
        "(glance-download needs regions registered in the same Keystone).",
    ),
]


# Unified limits (images/unified_limits.py): Glance's name, default and meaning.
unified_limits_opts = [
    cfg.BoolOpt(
        "use_keystone_limits",
        default=False,
        help="Enforce the per-project limits registered in Keystone (unified limits, through "
        "oslo.limit and its [oslo_limit] options): image_size_total and image_stage_total (MiB), "
        "image_count_total, image_count_uploading; GET /v2/info/usage reports them. Register the "
        "limits first: a resource without a registered limit counts as a limit of zero. When on, "
        "user_storage_quota is ignored.",
    ),
]

# Delayed delete (Glance's names and defaults; ``images/scrubber.py`` does the work).
scrubber_opts = [
    cfg.BoolOpt(
        "delayed_delete",
        default=False,
        help="Delete images in two steps: DELETE moves an image with data to 'pending_delete' (the API "
        "answers 404 from then on, the data stays), and the scrubber removes the data later. "
        "'glance-manage scrub --restore IMAGE_ID' brings a pending_delete image back until then.",
    ),
    cfg.IntOpt(
        "scrub_time",
        default=0,
        min=0,
        help="Seconds a pending_delete image keeps its data before the scrubber may remove it.",
    ),
    cfg.IntOpt(
        "scrub_pool_size",
        default=1,
        min=1,
        help="Images the scrubber removes in parallel.",
    ),
    cfg.IntOpt(
        "wakeup_time",
        default=300,
        min=0,
        help="Seconds between two runs of the periodic scrubber glance-api starts when delayed_delete is on "
        "(below 1: every second).",
    ),
]


# Format inspection of uploaded, staged and imported data (``images/format_inspector.py``).
image_format_opts = [
    cfg.BoolOpt(
        "require_image_format_match",
        default=True,
        help="Refuse (415) data that is not in the image's declared disk_format (raw: data that is "
        "another container format). Recognised formats are checked for safety either way (a qcow2 "
        "backing file, an unsafe VMDK descriptor or a differencing image is always refused).",
    ),
    cfg.ListOpt(
        "vmdk_allowed_types",
        default=["streamOptimized", "monolithicSparse"],
        help="VMDK createTypes accepted. Only single-file types are safe: the others keep their "
        "data in other files, which a crafted descriptor can point anywhere on the host.",
    ),
]

# The image cache on API nodes (``store/image_cache.py``); Glance's names and meanings.
cache_opts = [
    cfg.StrOpt(
        "image_cache_dir",
        help="Directory of this API node's image cache (off when unset). Downloads of active images "
        "are served from it; the /v2/cache admin API manages it.",
    ),
    cfg.IntOpt(
        "image_cache_max_size",
        default=10 * 1024**3,
        min=0,
        help="Bytes the image cache may hold (default 10 GiB). Beyond that the least recently used "
        "images are pruned, after every fill and by POST /v2/cache/prune.",
    ),
    cfg.IntOpt(
        "image_cache_stall_time",
        default=86400,
        min=0,
        help="Seconds after which an incomplete cache entry still being written is taken as stalled "
        "and removed by POST /v2/cache/clean (entries of dead writers go at once).",
    ),
]


register_opts = registrar(
    (None, paging_opts),
    (None, quota_opts),
    (None, data_opts),
    (None, scrubber_opts),
    ("image_format", image_format_opts),
    (None, cache_opts),
    (None, unified_limits_opts),  # unified limits
)


def storage_quota_bytes(value: str) -> int:
    """``user_storage_quota`` in bytes (0 = unlimited)."""
    text = value.strip().upper().removesuffix("B")
    units = {"K": 1, "M": 2, "G": 3, "T": 4}
    if text and text[-1] in units:
        return int(text[:-1]) * 1024 ** units[text[-1]]
    return int(text or 0)
