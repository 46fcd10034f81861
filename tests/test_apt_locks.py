"""apt waits for another apt instead of failing at once on its lock.

`make lab` run while another apt ran failed at once on the dpkg lock. The toolkit's apt tasks
wait (ansible.builtin.apt `lock_timeout`, default 60 s), and so does scripts/host-deps.sh
(apt-get install: DPkg::Lock::Timeout; apt-get update ignores that option for the lists lock
on apt 2.6, so the script retries it while the error is the lock).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LOCK_TIMEOUT = 600


def tasks_in(node):
    """Every task dict in a task file or play list, blocks included."""
    if isinstance(node, list):
        for item in node:
            yield from tasks_in(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            if key in node:
                yield from tasks_in(node[key])


def apt_tasks():
    for path in sorted(
        [
            *ROOT.glob("roles/*/tasks/*.yml"),
            *ROOT.glob("roles/*/handlers/*.yml"),
            *ROOT.glob("playbooks/*.yml"),
            *ROOT.glob("molecule/*/*.yml"),
        ]
    ):
        for task in tasks_in(yaml.safe_load(path.read_text())):
            for module in ("ansible.builtin.apt", "apt"):
                if module in task and isinstance(task[module], dict):
                    yield path.relative_to(ROOT).as_posix(), task.get("name", "?"), task[module]


def test_every_apt_task_waits_for_the_lock() -> None:
    found = list(apt_tasks())
    assert len(found) >= 7, found  # database, keystone, glance (2), ceph, swift, http_store
    short = [(path, name) for path, name, args in found if int(args.get("lock_timeout", 60)) < LOCK_TIMEOUT]
    assert not short, f"apt tasks without lock_timeout >= {LOCK_TIMEOUT}: {short}"


def test_no_apt_get_in_tasks() -> None:
    """apt-get from a command/shell task would not wait: the apt module does."""
    for path in [*ROOT.glob("roles/*/tasks/*.yml"), *ROOT.glob("playbooks/*.yml")]:
        text = path.read_text()
        assert "apt-get " not in text, f"{path}: use ansible.builtin.apt (lock_timeout) instead of apt-get"


def fake_apt(tmp_path: Path, update_failures: int) -> Path:
    """A PATH directory where dpkg-query reports nothing installed and apt-get's first
    `update_failures` updates fail on the lists lock; every call is logged."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    scripts = {
        "dpkg-query": "#!/bin/sh\nexit 1\n",
        "apt-get": f"""#!/bin/bash
echo "$*" >>{log}
if [[ " $* " == *" update "* ]]; then
  n=$(grep -c ' update' {log})
  if [ "$n" -le {update_failures} ]; then
    echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2
    echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
    exit 100
  fi
fi
exit 0
""",
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def run_host_deps(tmp_path: Path, update_failures: int, timeout: int) -> subprocess.CompletedProcess:
    bin_dir = fake_apt(tmp_path, update_failures)
    env = os.environ | {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "APT_LOCK_TIMEOUT": str(timeout),
        "APT_LOCK_POLL": "0.1",
    }
    return subprocess.run(
        ["bash", str(ROOT / "scripts/host-deps.sh")], env=env, capture_output=True, text=True, timeout=60
    )


def test_host_deps_waits_for_the_lists_lock(tmp_path: Path) -> None:
    proc = run_host_deps(tmp_path, update_failures=3, timeout=600)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    updates = [c for c in calls if " update" in c]
    installs = [c for c in calls if " install " in c]
    assert len(updates) == 4, calls  # three refused on the lock, the fourth went through
    assert len(installs) == 1, calls
    assert f"DPkg::Lock::Timeout={LOCK_TIMEOUT}" in installs[0], installs[0]
    assert "waiting" in proc.stderr


def test_host_deps_gives_up_after_the_timeout(tmp_path: Path) -> None:
    proc = run_host_deps(tmp_path, update_failures=10_000, timeout=1)
    assert proc.returncode != 0
    assert "Could not get lock" in proc.stderr
    assert " install " not in (tmp_path / "calls").read_text()
