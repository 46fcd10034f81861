"""Every role's meta/argument_specs.yml matches its defaults/main.yml: same names, same defaults,
types that accept the defaults; a required option (what a playbook must pass) has no default.
A variable added to one file and forgotten in the other fails here. Each entry point (a task
file entered with tasks_from) lists the role variables its task file reads, and every tasks_from
into a role with entry points names one of them. tests/test_role_entry_specs.py runs the entries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))
# Every role of the toolkit (a directory with tasks/) has a spec.
OWN_ROLES = sorted(p.parent.name for p in ROOT.glob("roles/*/tasks"))
PYTHON_TYPES = {
    "raw": object,
    "str": str,
    "path": str,
    "int": int,
    "bool": bool,
    "list": list,
    "dict": dict,
}


def load(role: str, name: str) -> dict:
    if name == "defaults/main.yml":
        return own_defaults(role)
    return yaml.safe_load((ROOT / "roles" / role / name).read_text()) or {}


def own_defaults(role: str) -> dict:
    """defaults/main.yml, or the files of defaults/main/ that are not symlinks (a symlink there is
    another role's defaults, read under its owner's names: roles/glance_day2)."""
    folder = ROOT / "roles" / role / "defaults" / "main"
    if not folder.is_dir():
        return yaml.safe_load((folder.parent / "main.yml").read_text()) or {}
    merged = {}
    for path in sorted(folder.glob("*.yml")):
        if not path.is_symlink():
            merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


@pytest.mark.parametrize("role", OWN_ROLES)
def test_role_has_argument_specs(role: str) -> None:
    assert role in ROLES, f"roles/{role}/meta/argument_specs.yml is missing"


def test_every_role_is_checked() -> None:
    assert {"glance_day2", "glance_switch", "glance", "loadbalancer"} <= set(OWN_ROLES)


def optional(options: dict) -> dict:
    return {n: o for n, o in (options or {}).items() if not o.get("required")}


@pytest.mark.parametrize("role", ROLES)
def test_main_spec_names_match_defaults(role: str) -> None:
    defaults = load(role, "defaults/main.yml")
    options = optional(load(role, "meta/argument_specs.yml")["argument_specs"]["main"]["options"])
    assert sorted(set(defaults) - set(options)) == [], "in defaults/main.yml but not in the spec"
    assert sorted(set(options) - set(defaults)) == [], "in the spec but not in defaults/main.yml"


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_and_types_match(role: str) -> None:
    defaults = load(role, "defaults/main.yml")
    specs = load(role, "meta/argument_specs.yml")["argument_specs"]
    for entry, spec in specs.items():
        for name, option in (spec.get("options") or {}).items():
            where = f"{role} {entry} {name}"
            assert option.get("description"), f"{where}: no description"
            assert option.get("type") in PYTHON_TYPES, f"{where}: no type (or one this test does not know)"
            if option.get("required"):
                # A default would make it never missing: Ansible validates the role's variables.
                assert name not in defaults, f"{where}: required but defaulted in defaults/main.yml"
                assert "default" not in option, f"{where}: required and a default"
                continue
            assert name in defaults, f"{where}: not in defaults/main.yml"
            assert option.get("default") == defaults[name], f"{where}: default differs from defaults/main.yml"
            expected = PYTHON_TYPES[option["type"]]
            value = defaults[name]
            if expected is object:
                continue
            if isinstance(value, str) and value.startswith("{{") and expected is not str:
                continue  # a template: Ansible checks its rendered value's type at run time
            # bool is an int in Python: check it explicitly.
            assert isinstance(value, expected) and (expected is bool) == isinstance(value, bool), (
                f"{where}: default {value!r} is not a {option['type']}"
            )
            if "choices" in option:
                assert value in option["choices"], f"{where}: default not among the choices"


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role: str) -> None:
    defaults = load(role, "defaults/main.yml")
    assert [n for n in defaults if not n.startswith(f"{role}_")] == []


@pytest.mark.parametrize("role", OWN_ROLES)
def test_passwords_are_no_log(role: str) -> None:
    options = load(role, "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    for name, option in options.items():
        if "password" in name:
            assert option.get("no_log") is True, f"{role} {name} must be no_log"


def _references(role: str, task_file: str, seen: set[str] | None = None) -> set[str]:
    """The role's variables a task file reads, following include_tasks and vars/main.yml."""
    seen = set() if seen is None else seen
    seen.add(task_file)
    pattern = re.compile(rf"\b_?{role}_\w+")
    text = (ROOT / "roles" / role / "tasks" / task_file).read_text()
    found = set(pattern.findall(text))
    for included in re.findall(r"include_tasks: (\S+\.yml)", text):
        if included not in seen:
            found |= _references(role, included, seen)
    private = load(role, "vars/main.yml") if (ROOT / "roles" / role / "vars/main.yml").exists() else {}
    defaults = load(role, "defaults/main.yml")
    todo = list(found)
    while todo:
        name = todo.pop()
        for source in (private, defaults):
            for ref in pattern.findall(str(source.get(name, ""))):
                if ref not in found:
                    found.add(ref)
                    todo.append(ref)
    return found


# The day-2 roles: each entry's spec says everything its task file reads.
@pytest.mark.parametrize("role", ["glance_day2", "glance_switch"])
def test_each_entry_lists_what_its_task_file_reads(role: str) -> None:
    defaults = load(role, "defaults/main.yml")
    for entry, spec in load(role, "meta/argument_specs.yml")["argument_specs"].items():
        options = spec.get("options") or {}
        public = {n for n in _references(role, f"{entry}.yml") if not n.startswith("_")}
        read = {n for n in public if n in defaults or n in options}
        assert sorted(read - set(options)) == [], f"{role} {entry}: read but not in the entry's spec"
        assert sorted(public - set(defaults) - set(options)) == [], f"{role} {entry}: read, defined nowhere"
        if entry != "main":
            assert sorted(set(options) - read) == [], f"{role} {entry}: in the spec but not read"


def _tasks_from() -> set[tuple[str, str]]:
    """(role, entry) of every include_role/import_role with tasks_from in playbooks/, roles/, molecule/."""
    found = set()
    block = re.compile(r"(?:include|import)_role:\s*\n\s+name: (\w+)\s*\n\s+tasks_from: (\S+)")
    for pattern in ("playbooks/*.yml", "roles/*/tasks/*.yml", "molecule/**/*.yml"):
        for path in ROOT.glob(pattern):
            text = path.read_text()
            for match in block.finditer(text):
                found.add((match.group(1), match.group(2).removesuffix(".yml")))
            for match in re.finditer(r"(?:include|import)_role: \{name: (\w+), tasks_from: (\w+)\}", text):
                found.add((match.group(1), match.group(2)))
    return found


def test_every_tasks_from_into_a_role_with_entries_names_an_entry() -> None:
    uses = _tasks_from()
    assert ("glance_day2", "backup") in uses and ("loadbalancer", "drain") in uses
    for role, entry in sorted(uses):
        if role not in ROLES:
            continue
        entries = load(role, "meta/argument_specs.yml")["argument_specs"]
        # Roles whose spec has only main are entered at main only; their other task files are
        # steps (roles/glance's config.yml, smoke.yml: see the role's spec).
        if set(entries) == {"main"} and role not in ("glance_day2", "glance_switch"):
            continue
        assert entry in entries, f"tasks_from: {entry} into {role} has no entry in its argument_specs"


def test_glance_day2_main_refuses_to_run() -> None:
    tasks = load("glance_day2", "tasks/main.yml")
    assert [next(k for k in t if k != "name") for t in tasks] == ["ansible.builtin.fail"]
