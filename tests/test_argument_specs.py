"""Every role's meta/argument_specs.yml matches its defaults/main.yml: same names, same defaults,
types that accept the defaults. A variable added to one file and forgotten in the other fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))
OWN_ROLES = ["database", "glance", "keystone"]
PYTHON_TYPES = {
    "str": str,
    "path": str,
    "int": int,
    "bool": bool,
    "list": list,
    "dict": dict,
}


def load(role: str, name: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / name).read_text()) or {}


@pytest.mark.parametrize("role", OWN_ROLES)
def test_role_has_argument_specs(role: str) -> None:
    assert role in ROLES, f"roles/{role}/meta/argument_specs.yml is missing"


@pytest.mark.parametrize("role", ROLES)
def test_main_spec_names_match_defaults(role: str) -> None:
    defaults = load(role, "defaults/main.yml")
    options = load(role, "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
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
            assert name in defaults, f"{where}: not in defaults/main.yml"
            assert option.get("default") == defaults[name], f"{where}: default differs from defaults/main.yml"
            expected = PYTHON_TYPES[option["type"]]
            value = defaults[name]
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
