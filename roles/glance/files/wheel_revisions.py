#!/usr/bin/env python3
"""Print, as a JSON list, the schema revisions the glance-service wheel inside a wheelhouse
archive ships (its alembic migrations' ``revision = "..."`` lines).

roles/glance runs it on the deploy host before installing (tasks/release_guard.yml): a
database whose revision the incoming release does not know was migrated by a newer release,
and installing this one would leave services that refuse to start.

Usage: wheel_revisions.py WHEELHOUSE_TAR
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import sys
import tarfile
import zipfile

WHEEL = "glance_service-*.whl"
VERSIONS = "glance_service/db/migrations/versions/*.py"
REVISION = re.compile(rb'^revision\s*=\s*["\']([^"\']+)["\']', re.M)


def revisions(archive: str) -> list[str]:
    with tarfile.open(archive) as tar:
        wheels = [
            m for m in tar.getmembers() if m.isfile() and fnmatch.fnmatch(m.name.rsplit("/", 1)[-1], WHEEL)
        ]
        if len(wheels) != 1:
            raise SystemExit(f"{archive}: expected one {WHEEL}, found {[m.name for m in wheels]}")
        data = tar.extractfile(wheels[0]).read()
    found = []
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        for name in wheel.namelist():
            if fnmatch.fnmatch(name, VERSIONS):
                match = REVISION.search(wheel.read(name))
                if match:
                    found.append(match.group(1).decode())
    if not found:
        raise SystemExit(f"{archive}: {wheels[0].name} ships no schema migrations")
    return sorted(found)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(json.dumps(revisions(sys.argv[1])))
