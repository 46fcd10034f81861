"""eventlet never loads in the service's processes (glance_service/__init__.py says why)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from glance_service.api import app
from glance_service.registry import server
import glance_store._drivers.filesystem  # imports futurist, which imports eventlet if it can
print(type(sys.modules.get("eventlet")).__name__)
"""


def test_glance_api_and_registry_modules_do_not_load_eventlet() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    # the module object would be "module"; None in sys.modules means every import was refused
    assert out.stdout.strip() == "NoneType", out.stdout + out.stderr
    assert "EventletDeprecationWarning" not in out.stderr
