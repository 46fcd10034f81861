"""molecule/ha builds its own inventory from its platforms' groups, and the ha-lab inventory
(`make ha-lab`) names the same hosts: a group in one and not the other deploys a different
topology than the one tested (session 8: the RabbitMQ cluster was in inventory/ha-lab only, so
molecule's HA run had no broker)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _inventory_groups(node: dict, group: str, found: dict[str, set[str]]) -> None:
    for host in node.get("hosts") or {}:
        found.setdefault(host, set()).add(group)
    for child, sub in (node.get("children") or {}).items():
        before = {h: set(g) for h, g in found.items()}
        _inventory_groups(sub or {}, child, found)
        # a host in a child group is in the parent group too
        for host, groups in found.items():
            if child in groups and child not in before.get(host, set()):
                groups.add(group)


def test_molecule_ha_platforms_have_the_ha_lab_groups() -> None:
    inventory = yaml.safe_load((ROOT / "inventory/ha-lab/hosts.yml").read_text())
    lab: dict[str, set[str]] = {}
    _inventory_groups(inventory["all"], "all", lab)
    platforms = yaml.safe_load((ROOT / "molecule/ha/molecule.yml").read_text())["platforms"]
    generic = {"all", "lab", "controllers"}  # the lab's own grouping, set by molecule/shared
    for platform in platforms:
        expected = lab[platform["name"]] - generic
        assert set(platform["groups"]) == expected, platform["name"]
