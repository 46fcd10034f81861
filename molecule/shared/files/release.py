"""A newer release for upgrade tests: the deployed wheelhouse with glance-service rebuilt from
this checkout plus one additive migration (a new table), as a release that moves the schema
would be. Used by molecule/day2 and molecule/ha. Standard library only (pip builds the wheel)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile

PROBE_MIGRATION = '''"""A release that moves the schema (upgrade tests only): one new table."""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None
# Additive: the previous release keeps serving on it (glance-manage db expand).
phase = "expand"

def upgrade() -> None:
    op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("{table}")
'''


def _head(versions: str) -> str:
    parents = {}
    for name in os.listdir(versions):
        if name.endswith(".py"):
            with open(os.path.join(versions, name)) as handle:
                text = handle.read()
            rev = re.search(r'^revision = "([^"]+)"', text, re.M).group(1)
            parents[rev] = re.search(r'^down_revision = "?([^"\n]+)"?', text, re.M).group(1)
    (head,) = set(parents) - set(parents.values())
    return head


def newer_release(project: str, wheelhouse: str, workdir: str, revision: str, table: str):
    """Returns (the new release's directory, holding wheelhouse.tar; its schema revision)."""
    src = os.path.join(workdir, "src")
    shutil.copytree(
        os.path.join(project, "service"),
        src,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"),
    )
    versions = os.path.join(src, "glance_service", "db", "migrations", "versions")
    head = _head(versions)
    with open(os.path.join(versions, f"{revision}.py"), "w") as handle:
        handle.write(PROBE_MIGRATION.format(revision=revision, down=head, table=table))
    wheels = os.path.join(workdir, "wheels")
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--wheel-dir", wheels, src], check=True)
    (wheel,) = os.listdir(wheels)
    release = os.path.join(workdir, "newer")
    os.mkdir(release)
    replaced = False
    with (
        tarfile.open(os.path.join(wheelhouse, "wheelhouse.tar")) as old,
        tarfile.open(os.path.join(release, "wheelhouse.tar"), "w") as new,
    ):
        for member in old.getmembers():
            if member.name == wheel:
                replaced = True
                continue
            new.addfile(member, old.extractfile(member))
        new.add(os.path.join(wheels, wheel), arcname=wheel)
    assert replaced, f"{wheel} is not in the deployed wheelhouse (a different version?)"
    return release, revision
