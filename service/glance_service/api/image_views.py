"""Image records → the JSON clients see (Glance's ``_format_image``)."""

from __future__ import annotations

from oslo_config import cfg

from glance_service.api.common import isotime
from glance_service.common.registrar import registrar

# Recorded by the data path; never shown (Glance hides the first two; the third is ours).
HIDDEN_PROPERTIES = frozenset(
    {"os_glance_stage_host", "os_glance_hash_op_host", "os_glance_upload_host", "os_glance_import_worker"}
)
_ATTRIBUTES = (
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "size",
    "virtual_size",
    "status",
    "checksum",
    "protected",
    "min_ram",
    "min_disk",
    "owner",
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
)

display_opts = [
    cfg.BoolOpt(
        "show_image_direct_url",
        default=False,
        help="Show the URL of the image's data in its store as 'direct_url'. Reveals store details: "
        "enable only for trusted clients (e.g. Ceph copy-on-write clones).",
    ),
    cfg.BoolOpt(
        "show_multiple_locations",
        default=False,
        # As Glance: setting it logs a deprecation warning.
        deprecated_for_removal=True,
        deprecated_since="Newton",
        deprecated_reason="Glance deprecates it (a security risk) and will remove it once the cases "
        "that need it are covered otherwise.",
        help="Show the image's 'locations' and allow changing them through PATCH. Reveals store "
        "details; deprecated in Glance, kept for compatibility (Nova's rbd snapshots).",
    ),
]


register_opts = registrar((None, display_opts))


class ImageView:
    """Serialiser configured once per process."""

    def __init__(self, show_direct_url: bool, show_locations: bool):
        self.show_direct_url = show_direct_url
        self.show_locations = show_locations

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> ImageView:
        return cls(conf.show_image_direct_url, conf.show_multiple_locations)

    def __call__(self, image: dict) -> dict:
        view: dict = {}
        for key, value in (image.get("properties") or {}).items():
            if key in HIDDEN_PROPERTIES:
                continue
            # Glance's schema filter: a custom property stored as None is shown as "".
            view[key] = "" if value is None else value
        for key in _ATTRIBUTES:
            view[key] = image.get(key)
        image_id = image["id"]
        view["id"] = image_id
        view["created_at"] = isotime(image.get("created_at"))
        view["updated_at"] = isotime(image.get("updated_at"))
        locations = [loc for loc in image.get("locations") or [] if loc.get("status", "active") == "active"]
        if self.show_locations:
            view["locations"] = [
                {"url": loc["url"], "metadata": loc.get("metadata") or {}} for loc in locations
            ]
        if self.show_direct_url and locations:
            view["direct_url"] = locations[0]["url"]
        view["tags"] = list(image.get("tags") or [])
        view["self"] = f"/v2/images/{image_id}"
        view["file"] = f"/v2/images/{image_id}/file"
        view["schema"] = "/v2/schemas/image"
        return view
