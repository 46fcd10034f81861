"""Which process holds a piece of work: ``"<hostname>:<pid>:<start time>"`` markers.

An upload (``os_glance_upload_host``), a staging or an import (``os_glance_import_worker``)
records the marker of the process doing it, so that start-up recovery can tell work a dead
process left from work still running: a pid alone is reused, a pid with its start time (clock
ticks since boot, from ``/proc``) is unique for the life of the host.
"""

from __future__ import annotations

import os
import socket


def process_marker() -> str:
    """This process's marker."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{start_time(pid) or ''}"


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), None if no such live process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name may hold spaces and parentheses; the fields after it are fixed
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X", "x"):
        return None  # killed, not yet reaped
    return fields[19]


def marker_alive(marker: str | None) -> bool | None:
    """True/False for a process of this host; None when the marker names another host."""
    host, _, rest = (marker or "").partition(":")
    if host != socket.gethostname():
        return None
    pid, _, start = rest.partition(":")
    return pid.isdigit() and start_time(int(pid)) == start
