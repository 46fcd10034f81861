"""Work a gunicorn master does once at start-up, run in a forked child.

The master only forks and watches workers. Whatever it imports or allocates stays resident for
its whole life and counts again in every worker forked from it: the recovery of interrupted
uploads (the whole API: stores, boto3, keystonemiddleware) or the registry's schema check
(alembic, SQLAlchemy) cost the master 40-50 MiB for a few milliseconds of work. In a child,
that memory goes back when the child exits.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def run(fn: Callable[[], int | None], what: str) -> int:
    """``fn()`` in a forked child; its exit code (its return value, 1 if it raised)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        code = 1
        try:
            code = fn() or 0
        except BaseException:
            LOG.exception("%s failed", what)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def reload_check_command(proc_name: str) -> list[str]:
    """The command that builds ``proc_name``'s application in a fresh interpreter
    (``cmd.reload_check``); the configuration files are appended to it."""
    return [sys.executable, "-m", "glance_service.cmd.reload_check", proc_name]
