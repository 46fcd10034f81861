"""roles/glance's guard against installing a release older than the database's schema:
the revisions a wheelhouse's glance-service wheel ships, read on the deploy host."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "roles" / "glance" / "files" / "wheel_revisions.py"
VERSIONS = ROOT / "service" / "glance_service" / "db" / "migrations" / "versions"


def _wheelhouse(tmp_path: Path, migrations: dict[str, str], extra_wheels: tuple[str, ...] = ()) -> Path:
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("glance_service/__init__.py", "")
        for name, text in migrations.items():
            z.writestr(f"glance_service/db/migrations/versions/{name}", text)
    archive = tmp_path / "wheelhouse.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("glance_service-1.0-py3-none-any.whl", wheel.getvalue()),) + tuple(
            (w, b"not read") for w in extra_wheels
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def _run(archive: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(archive)], capture_output=True, text=True)


def test_lists_the_revisions_the_wheel_ships(tmp_path):
    archive = _wheelhouse(
        tmp_path,
        {
            "0001_initial.py": 'revision = "0001_initial"\ndown_revision = None\n',
            "0002_tasks.py": "revision = '0002_tasks'\ndown_revision = '0001_initial'\n",
            "__init__.py": "",
        },
        extra_wheels=("SQLAlchemy-2.0-py3-none-any.whl",),
    )
    done = _run(archive)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["0001_initial", "0002_tasks"]


def test_the_service_revisions_are_all_found(tmp_path):
    """Every migration this checkout ships, read back as a wheel would hold it."""
    archive = _wheelhouse(tmp_path, {p.name: p.read_text() for p in VERSIONS.glob("*.py")})
    done = _run(archive)
    expected = sorted(p.stem for p in VERSIONS.glob("0*.py"))
    assert done.returncode == 0 and json.loads(done.stdout) == expected


@pytest.mark.parametrize("migrations", [{}, {"README": "x"}])
def test_a_wheel_without_migrations_is_an_error(tmp_path, migrations):
    done = _run(_wheelhouse(tmp_path, migrations))
    assert done.returncode != 0 and "ships no schema migrations" in done.stderr


def test_an_archive_without_the_service_wheel_is_an_error(tmp_path):
    archive = tmp_path / "wheelhouse.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("other-1.0-py3-none-any.whl")
        tar.addfile(info, io.BytesIO(b""))
    done = _run(archive)
    assert done.returncode != 0 and "expected one glance_service-*.whl" in done.stderr
