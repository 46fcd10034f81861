"""The store switch's planning logic (roles/glance_switch/library/glance_switch.py): which
images move, which are there already, which cannot move and keep the old store. Pure logic,
so the API is a list of image records here; the switch itself runs in molecule/backend-switch."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import ansible.module_utils
import pytest

ROLE = Path(__file__).resolve().parent.parent / "roles/glance_switch"
# As Ansible does for a loaded role: its module_utils/ joins ansible.module_utils.
ansible.module_utils.__path__.append(str(ROLE / "module_utils"))
sys.path.insert(0, str(ROLE / "library"))
import glance_switch as gs  # noqa: E402


def image(image_id, status="active", stores="file", size=10, **extra):
    return {"id": image_id, "status": status, "stores": stores, "size": size, **extra}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (image("a"), "move"),
        (image("a", stores="file,rbd"), "done"),
        # A copy recorded as failed is not a copy: it moves again.
        (image("a", stores="file,rbd", os_glance_failed_import="rbd"), "move"),
        (image("a", status="deactivated"), "blocked"),
        (image("a", status="queued", stores=""), "empty"),
        (image("a", status="killed", stores=""), "empty"),
    ],
)
def test_classify(record, expected):
    kind, reason = gs.classify(record, "rbd", ["file"])
    assert kind == expected
    assert bool(reason) == (expected in ("blocked", "empty"))


def test_selected_by_ids_and_properties():
    record = image("a", os_distro="debian")
    assert gs.selected(record, [], {})
    assert gs.selected(record, ["a"], {"os_distro": "debian"})
    assert not gs.selected(record, ["b"], {})
    assert not gs.selected(record, [], {"os_distro": "ubuntu"})


class FakeApi:
    def __init__(self, records):
        self.records = records

    def images(self):
        return iter(self.records)


def test_plan_orders_smallest_first_and_counts_only_what_moves():
    records = [
        image("big", size=300),
        image("small", size=100),
        image("there", stores="file,rbd", size=999),
        image("off", status="deactivated", size=50),
    ]
    params = {"images": [], "image_filter": {}, "target": "rbd", "sources": ["file"], "rate_mib": 1}
    plan = gs.do_plan(SimpleNamespace(params=params), FakeApi(records))
    assert [r["id"] for r in plan["move"]] == ["small", "big"]
    assert plan["done"] == ["there"]
    assert [r["id"] for r in plan["blocked"]] == ["off"]
    assert plan["bytes"] == 400
    assert plan["estimate_s"] == round(400 / 1048576, 1)
    assert plan["changed"] is False
