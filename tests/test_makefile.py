"""The Makefile's promises: `make help` lists every target, the README gives every test
target's measured time, and the lab's credentials (clouds.yaml, admin-openrc) are written
private, usable, and removed by `make lab-destroy`."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MAKEFILES = [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
# A rule line: targets, one colon (not :=, not ::=), then prerequisites or a `## ` note.
RULE = re.compile(r"^([A-Za-z0-9_.-][^:=#$/]*?)\s*:(?![:=])")


def makefiles(root: Path = ROOT) -> list[Path]:
    return [root / "Makefile", *sorted((root / "mk").glob("*.mk"))]


def phony_targets(root: Path = ROOT) -> list[str]:
    targets = []
    for path in makefiles(root):
        for line in path.read_text().splitlines():
            if line.startswith(".PHONY:"):
                targets += line.split(":", 1)[1].split()
    return targets


def rule_targets(root: Path = ROOT) -> list[str]:
    """The named targets of every rule in Makefile and mk/*.mk (not file targets such as
    $(VENV)/.installed, not special ones such as .PHONY)."""
    targets = []
    for path in makefiles(root):
        for line in path.read_text().splitlines():
            found = RULE.match(line)
            if found:
                targets += [t for t in found.group(1).split() if not t.startswith(".")]
    return targets


def make(*args: str, root: Path = ROOT) -> str:
    proc = subprocess.run(
        ["make", "--no-print-directory", "-s", *args], cwd=root, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def help_problems(root: Path = ROOT) -> list[str]:
    """What `make help` gets wrong: a target missing, listed twice, or without its line."""
    lines = make("help", root=root).splitlines()
    listed = [line.split()[1] for line in lines if line.startswith("make ")]
    problems = [f"listed twice: {t}" for t in sorted({t for t in listed if listed.count(t) > 1})]
    problems += [f"not in make help (no `## ` note): {t}" for t in rule_targets(root) if t not in listed]
    problems += [f"not .PHONY: {t}" for t in rule_targets(root) if t not in phony_targets(root)]
    problems += [f"in .PHONY without a rule: {t}" for t in phony_targets(root) if t not in rule_targets(root)]
    problems += [
        f"without its one-line description: {line!r}" for line in lines if len(line.split(None, 2)) < 3
    ]
    return problems


def test_help_lists_every_target_once() -> None:
    assert len(rule_targets()) >= 20
    assert help_problems() == []


def test_a_target_without_a_help_line_fails(tmp_path: Path) -> None:
    """The check above catches a new target without a `## ` note, phony or not."""
    (tmp_path / "mk").mkdir()
    for path in MAKEFILES:
        (tmp_path / path.relative_to(ROOT)).write_text(path.read_text())
    assert help_problems(tmp_path) == []
    with (tmp_path / "mk" / "zz-new.mk").open("w") as mk:
        mk.write(".PHONY: new-phony\nnew-phony: venv\n\techo new\n\nnew-plain:\n\techo plain\n")
    assert help_problems(tmp_path) == [
        "not in make help (no `## ` note): new-phony",
        "not in make help (no `## ` note): new-plain",
        "not .PHONY: new-plain",
    ]


def test_readme_gives_each_test_target_a_measured_time() -> None:
    """A row `| `make test-...` | ... | <time> |` for each test target in README.md."""
    readme = (ROOT / "README.md").read_text()
    for target in [t for t in phony_targets() if t == "test" or t.startswith("test-")]:
        row = re.search(rf"^\| `make {re.escape(target)}` \|.*\|(.*)\|\s*$", readme, re.M)
        assert row, f"README.md has no table row for make {target}"
        assert re.search(r"\d+ ?(min|s)\b", row.group(1)), (
            f"make {target}: no measured time in {row.group(0)!r}"
        )


def write_credentials(tmp_path: Path, password: str) -> tuple[Path, Path]:
    secret = tmp_path / "keystone_admin"
    secret.write_text(password + "\n")
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(
        ["bash", str(ROOT / "scripts/lab-credentials.sh"), str(secret), "198.51.100.10", str(out)],
        check=True,
        capture_output=True,
    )
    return out / "clouds.yaml", out / "admin-openrc"


def test_lab_credentials_clouds_yaml_and_openrc(tmp_path: Path) -> None:
    password = "Ab1 'q\"$x`y\\z"  # nothing a generated password has, all of it survives
    clouds, openrc = write_credentials(tmp_path, password)
    for path in (clouds, openrc):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    cloud = yaml.safe_load(clouds.read_text())["clouds"]["glance-lab"]
    assert cloud["auth"]["password"] == password
    assert cloud["auth"]["auth_url"] == "http://198.51.100.10:5000/v3"

    env = subprocess.run(
        ["bash", "-c", f"set -e; source {openrc}; env -0"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
    ).stdout.decode()
    got = dict(item.split("=", 1) for item in env.split("\0") if item.startswith("OS_"))
    assert got == {
        "OS_AUTH_URL": "http://198.51.100.10:5000/v3",
        "OS_USERNAME": "admin",
        "OS_PASSWORD": password,
        "OS_PROJECT_NAME": "admin",
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": "RegionOne",
        "OS_INTERFACE": "public",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_IMAGE_API_VERSION": "2",
    }


def test_lab_credentials_need_the_secret(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts/lab-credentials.sh"),
            str(tmp_path / "none"),
            "198.51.100.10",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "deploy first" in proc.stderr
    assert not (tmp_path / "clouds.yaml").exists()


def test_lab_destroy_removes_the_credentials_and_git_ignores_them() -> None:
    recipe = make("-n", "lab-destroy", "VENV=/nonexistent")
    assert re.search(r"^rm -f .*\bclouds\.yaml\b.*\badmin-openrc\b", recipe, re.M), recipe
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "/clouds.yaml" in ignored
    assert "/admin-openrc" in ignored
