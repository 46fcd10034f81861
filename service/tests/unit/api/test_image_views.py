"""The image serialiser (Glance's ``_format_image``): keys, values and their order."""

from __future__ import annotations

import json

import pytest

from glance_service.api.image_views import ImageView

RECORD = {
    "id": "11111111-2222-3333-4444-555555555555",
    "name": "cirros",
    "disk_format": "qcow2",
    "container_format": "bare",
    "visibility": "shared",
    "size": 1024,
    "virtual_size": None,
    "status": "active",
    "checksum": "c" * 32,
    "protected": False,
    "min_ram": 0,
    "min_disk": 1,
    "owner": "alpha",
    "os_hidden": False,
    "os_hash_algo": "sha512",
    "os_hash_value": "a" * 128,
    "created_at": "2026-01-02T03:04:05.678901",
    "updated_at": "2026-01-02T03:04:06.000000",
    "deleted_at": None,
    "deleted": False,
    "properties": {"os_distro": "cirros", "os_glance_upload_host": "h1", "empty": None, "é": "ü"},
    "tags": ["b", "a"],
    "locations": [
        {"id": 1, "url": "file:///old", "metadata": {}, "status": "pending_delete"},
        {"id": 2, "url": "file:///a", "metadata": {"store": "fs"}, "status": "active"},
        {"id": 3, "url": "file:///b", "metadata": None, "status": "active"},
    ],
}

BASE = [
    ("os_distro", "cirros"),
    ("empty", ""),
    ("é", "ü"),
    ("name", "cirros"),
    ("disk_format", "qcow2"),
    ("container_format", "bare"),
    ("visibility", "shared"),
    ("size", 1024),
    ("virtual_size", None),
    ("status", "active"),
    ("checksum", "c" * 32),
    ("protected", False),
    ("min_ram", 0),
    ("min_disk", 1),
    ("owner", "alpha"),
    ("os_hidden", False),
    ("os_hash_algo", "sha512"),
    ("os_hash_value", "a" * 128),
    ("id", RECORD["id"]),
    ("created_at", "2026-01-02T03:04:05Z"),
    ("updated_at", "2026-01-02T03:04:06Z"),
]
TAIL = [
    ("tags", ["b", "a"]),
    ("self", f"/v2/images/{RECORD['id']}"),
    ("file", f"/v2/images/{RECORD['id']}/file"),
    ("schema", "/v2/schemas/image"),
]
LOCATIONS = [
    ("locations", [{"url": "file:///a", "metadata": {"store": "fs"}}, {"url": "file:///b", "metadata": {}}])
]
DIRECT = [("direct_url", "file:///a")]


@pytest.mark.parametrize(
    ("show_direct_url", "show_locations", "middle"),
    [
        (False, False, []),
        (True, False, DIRECT),
        (False, True, LOCATIONS),
        (True, True, LOCATIONS + DIRECT),
    ],
)
def test_view_keys_values_and_order(show_direct_url, show_locations, middle):
    view = ImageView(show_direct_url, show_locations)(RECORD)
    assert list(view.items()) == BASE + middle + TAIL
    # The same JSON text, key order included.
    assert json.dumps(view) == json.dumps(dict(BASE + middle + TAIL))


def test_view_of_a_sparse_record():
    """A record without children or timestamps (as the registry may send for a fresh image)."""
    view = ImageView(True, True)({"id": "x", "name": None, "created_at": None, "updated_at": ""})
    assert view["locations"] == [] and "direct_url" not in view
    assert view["tags"] == [] and view["created_at"] is None and view["updated_at"] == ""
    assert list(view)[:15] == [key for key, _ in BASE[3:18]]  # the attributes, no properties
    assert all(view[k] is None for k in ("size", "owner", "status"))


def test_view_does_not_share_the_records_lists():
    image = json.loads(json.dumps(RECORD))
    view = ImageView(False, True)(image)
    view["tags"].append("c")
    view["locations"].pop()
    assert image["tags"] == ["b", "a"] and len(image["locations"]) == 3
