"""Each role entry point with a required option refuses to run without it, with the argument spec's
own message: for every role, every entry in meta/argument_specs.yml and every required option, a
generated playbook enters the role (include_role with tasks_from, on localhost) with all the other
required options given and that one left out, and must fail at the spec validation naming it.

One ansible-playbook run per (entry, option), so a failure is that entry's own; they run in
parallel. The validation is the action plugin validate_argument_spec: it runs on the controller
before the role's first task, so nothing is executed on any host."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
# A value of the right type for the required options that are given.
SAMPLE = {"str": "x", "path": "/nonexistent", "raw": "x", "dict": {}, "list": [], "int": 1, "bool": False}


def _required() -> list[tuple[str, str, str, dict]]:
    """(role, entry, missing option, the other required options with sample values)."""
    cases = []
    for spec_file in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        for entry, spec in yaml.safe_load(spec_file.read_text())["argument_specs"].items():
            required = {n: o for n, o in (spec.get("options") or {}).items() if o.get("required")}
            for name in required:
                given = {n: SAMPLE[o["type"]] for n, o in required.items() if n != name}
                cases.append((role, entry, name, given))
    return cases


CASES = _required()


def _playbook(role: str, entry: str, given: dict) -> list:
    include = {"name": role} if entry == "main" else {"name": role, "tasks_from": entry}
    return [
        {
            "name": f"Enter {role} at {entry}",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}", **given},
            "tasks": [{"name": "Enter the role", "ansible.builtin.include_role": include}],
        }
    ]


def _run(case: tuple[str, str, str, dict], workdir: Path) -> subprocess.CompletedProcess:
    role, entry, name, given = case
    run_dir = workdir / f"{role}-{entry}-{name}"
    run_dir.mkdir()
    (run_dir / "playbook.yml").write_text(yaml.safe_dump(_playbook(role, entry, given), sort_keys=False))
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp"),
        "ANSIBLE_HOME": str(run_dir / "home"),
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }
    env.pop("ANSIBLE_CONFIG", None)
    # cwd is the run's own directory: no ansible.cfg there, so the repository's (inventory/lab) is not read.
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "playbook.yml"],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    workdir = tmp_path_factory.mktemp("entries")
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda case: _run(case, workdir), CASES)
        return {case[:3]: result for case, result in zip(CASES, results, strict=True)}


def test_some_entries_have_required_options() -> None:
    # The day-2 entries take what their playbook passes: they are the cases below.
    entries = {(role, entry) for role, entry, _, _ in CASES}
    assert {("glance_switch", "main"), ("glance_day2", "backup"), ("glance_day2", "restore_store")} <= entries


@pytest.mark.parametrize("case", CASES, ids=[f"{r}:{e}:{n}" for r, e, n, _ in CASES])
def test_entry_fails_on_the_missing_required_option(case: tuple, runs: dict) -> None:
    role, entry, name, _ = case
    result = runs[case[:3]]
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{role} {entry} ran without {name}:\n{output}"
    assert f"Validating arguments against arg spec '{entry}'" in output, output
    assert "Validation of arguments failed" in output, output
    assert f"missing required arguments: {name}" in output, output
