"""Every third-party module the service imports comes from a declared dependency.

The test venv holds more than the service declares (test tools, Ansible, Keystone's pins), so an
import that works here can fail on a controller, where the wheelhouse installs only what
``pyproject.toml`` declares and what those declare in turn. Seen once: oslo.utils' format
inspector imports ``cryptography``, which oslo.utils does not declare; every glance-api worker
failed to boot on the lab's hosts while every test here passed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: import every glance_service module with a finder in front that
# refuses top-level packages outside the declared closure.
PROBE = textwrap.dedent(
    r"""
    import importlib, importlib.metadata as md, json, pkgutil, re, sys
    from packaging.requirements import Requirement

    def closure(name, seen):
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            return
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            return
        seen.add(key)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                closure(req.name, seen)

    allowed = set()
    closure("glance-service", allowed)
    owners = md.packages_distributions()
    stdlib = set(sys.stdlib_module_names)

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top in stdlib or top == "glance_service" or top.startswith("_"):
                return None
            dists = {re.sub(r"[-_.]+", "-", d).lower() for d in owners.get(top, [])}
            if dists and not dists & allowed:
                raise ImportError(f"{name}: from {sorted(dists)}, not a declared dependency")
            return None

    # What the probe itself loaded (packaging) must be found again, through the finder.
    for loaded in [m for m in sys.modules if m.split(".")[0] not in stdlib]:
        del sys.modules[loaded]
    sys.meta_path.insert(0, Refuse())
    import glance_service
    failures = {}
    for mod in pkgutil.walk_packages(glance_service.__path__, "glance_service."):
        if ".migrations.versions" in mod.name:
            continue
        try:
            importlib.import_module(mod.name)
        except ImportError as exc:
            failures[mod.name] = str(exc)
    print(json.dumps(failures))
    """
)


def test_service_imports_only_declared_dependencies() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=SERVICE, capture_output=True, text=True, timeout=300, check=True
    )
    failures = json.loads(out.stdout.strip().splitlines()[-1])
    assert failures == {}, "modules that import undeclared packages: " + json.dumps(failures, indent=1)
