"""Every molecule scenario that deploys the image service snapshots the wheelhouse it installs.

The hosts install from `glance_wheelhouse_src` (molecule/shared/vars/wheelhouse.yml: the
ephemeral directory), which only molecule/shared/prepare.yml fills. A scenario that links the
variables but skips the prepare step fails on a fresh clone (the day2 scenario did, in 27 s).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MOLECULE = ROOT / "molecule"
SHARED_VARS = MOLECULE / "shared" / "vars" / "wheelhouse.yml"
SHARED_PREPARE = MOLECULE / "shared" / "prepare.yml"
SCENARIOS = sorted(p.parent.name for p in MOLECULE.glob("*/molecule.yml"))


def scenario(name: str) -> dict:
    return yaml.safe_load((MOLECULE / name / "molecule.yml").read_text())


def deploys_image_service(name: str) -> bool:
    """The converge playbook runs site.yml or playbooks/glance.yml (the image service's role)."""
    conf = scenario(name)
    converge = MOLECULE / name / conf["provisioner"]["playbooks"].get("converge", "converge.yml")
    text = converge.read_text()
    return "site.yml" in text or "playbooks/glance.yml" in text


def group_vars_dir(name: str) -> Path:
    links = scenario(name)["provisioner"].get("inventory", {}).get("links", {})
    return (MOLECULE / name / links.get("group_vars", "group_vars")).resolve()


def test_scenarios_found() -> None:
    assert {"default", "multinode", "day2", "backends", "backend-switch"} <= set(SCENARIOS)


@pytest.mark.parametrize("name", [s for s in SCENARIOS if deploys_image_service(s)])
def test_scenario_snapshots_the_wheelhouse(name: str) -> None:
    conf = scenario(name)
    wheelhouse_vars = group_vars_dir(name) / "all" / "wheelhouse.yml"
    assert wheelhouse_vars.resolve() == SHARED_VARS.resolve(), (
        f"{name}: group_vars/all/wheelhouse.yml must link molecule/shared/vars/wheelhouse.yml"
    )
    prepare = conf["provisioner"]["playbooks"].get("prepare")
    assert prepare, f"{name}: no prepare playbook (molecule/shared/prepare.yml fills the wheelhouse)"
    assert (MOLECULE / name / prepare).resolve() == SHARED_PREPARE.resolve(), name
    sequence = conf["scenario"]["test_sequence"]
    assert "prepare" in sequence, f"{name}: prepare is not in the test sequence"
    assert sequence.index("prepare") < sequence.index("converge"), name


def test_one_definition_of_the_wheelhouse_source() -> None:
    """glance_wheelhouse_src is set once, in molecule/shared/vars/wheelhouse.yml (links aside)."""
    defining = []
    for path in MOLECULE.rglob("*.yml"):
        if path.is_symlink() or os.path.islink(path):
            continue
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "glance_wheelhouse_src" in data:
            defining.append(path.relative_to(ROOT).as_posix())
    assert defining == ["molecule/shared/vars/wheelhouse.yml"]
