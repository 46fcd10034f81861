"""The inventories: groups the playbooks need, distinct addresses, and no secret in git."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def groups_of(tree: dict, out: dict | None = None) -> dict:
    """Flatten a YAML inventory into {group: set(hosts)} (children included)."""
    out = {} if out is None else out
    for name, group in (tree.get("children") or {}).items():
        group = group or {}
        hosts = set((group.get("hosts") or {}).keys())
        groups_of(group, out)
        for child in group.get("children") or {}:
            hosts |= out.get(child, set())
        out[name] = out.get(name, set()) | hosts
    return out


@pytest.mark.parametrize("inventory", ["lab", "example"])
def test_groups_present(inventory: str) -> None:
    tree = yaml.safe_load((ROOT / "inventory" / inventory / "hosts.yml").read_text())["all"]
    groups = groups_of(tree)
    for group in ("database", "glance_registry", "glance_api", "controllers"):
        assert groups.get(group), f"{inventory}: group {group} is empty"
    assert groups["controllers"] == groups["glance_registry"] | groups["glance_api"]


def test_lab_host() -> None:
    tree = yaml.safe_load((ROOT / "inventory/lab/hosts.yml").read_text())["all"]
    assert tree["children"]["lab"]["hosts"]["glance-aio"]["ansible_host"] == "198.51.100.10"


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("inventory/**/*.yml")))
def test_no_literal_secrets(path: str) -> None:
    """Every password in a committed inventory comes from a lookup or a (vault) variable."""
    data = yaml.safe_load((ROOT / path).read_text()) or {}

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if "password" in str(key) and isinstance(value, str):
                    yield key, value
                yield from walk(value)

    for key, value in walk(data):
        assert re.fullmatch(r"\s*\{\{.*\}\}\s*", value, re.S), f"{path}: {key} is a literal secret"
