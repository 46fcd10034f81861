"""The deployment verifier's fixtures (molecule/shared/tests/conftest.py), loaded under another
module name: this directory runs in its own pytest session, and both files are `conftest`."""

from __future__ import annotations

import importlib.util
import pathlib

_PATH = pathlib.Path(__file__).resolve().parents[3] / "molecule/shared/tests/conftest.py"
_spec = importlib.util.spec_from_file_location("deployment_conftest", _PATH)
_deployment = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_deployment)

cloud = _deployment.cloud
hosts_of = _deployment.hosts_of
ssh_host = _deployment.ssh_host
