"""Tests of the fixtures themselves: a server that is not there fails the run under CI.

``tests/fixtures/availability.py`` holds the rule; the Keystone fixture is checked end to end
by running pytest on a one-test file in a subprocess, with ``KEYSTONE_VENV`` pointing at a
directory that does not exist: under ``CI=1`` the run fails and says why, without it the test
is skipped with the same words. Nothing is started on that path (``memcached`` is replaced by
a fixture that fails if it is asked for).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.availability import in_ci, unavailable

SERVICE = Path(__file__).resolve().parents[2]

USES_KEYSTONE = """
import pytest

from tests.fixtures.keystone import keystone  # noqa: F401  (the session fixture under test)


@pytest.fixture(scope="session")
def memcached():
    raise AssertionError("memcached was started before the Keystone virtualenv was checked")


def test_needs_keystone(keystone):  # noqa: F811
    pass
"""


@pytest.mark.parametrize("value", ["1", "true", "yes", "TRUE"])
def test_ci_is_recognised(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    assert in_ci()


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "False"])
def test_not_ci(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert not in_ci()


def test_unavailable_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception) as failed:
        unavailable("frobd is not installed", "apt-get install frobd")
    assert "frobd is not installed (to get it: apt-get install frobd)" in str(failed.value)
    assert "CI=1" in str(failed.value)


def test_unavailable_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        unavailable("frobd is not installed", "apt-get install frobd")
    assert str(skipped.value) == "frobd is not installed (to get it: apt-get install frobd)"


def _run_keystone_test(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    test_file = tmp_path / "test_uses_keystone.py"
    test_file.write_text(USES_KEYSTONE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["KEYSTONE_VENV"] = str(tmp_path / "no-keystone-venv")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SERVICE), os.environ.get("PYTHONPATH")) if p)
    if ci is not None:
        env["CI"] = ci
    # No ini file and no cache: only the one test file and the fixture under test.
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-c", os.devnull]
    cmd += ["--rootdir", str(tmp_path), str(test_file)]
    return subprocess.run(
        cmd,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_keystone_fixture_without_its_virtualenv_fails_the_run_under_ci(tmp_path):
    run = _run_keystone_test(tmp_path, ci="1")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "1 error" in out, out
    assert f"no Keystone virtualenv at {tmp_path / 'no-keystone-venv'}" in out, out
    assert "to get it: make keystone-venv" in out, out
    assert "CI=1, so a test server that is not there fails the run" in out, out
    assert "memcached was started" not in out, out


def test_keystone_fixture_without_its_virtualenv_skips_outside_ci(tmp_path):
    run = _run_keystone_test(tmp_path, ci=None)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "1 skipped" in out, out
    assert f"no Keystone virtualenv at {tmp_path / 'no-keystone-venv'}" in out, out
    assert "to get it: make keystone-venv" in out, out
