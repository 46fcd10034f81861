"""Process identity: a marker naming one live process, so that work a process claimed (an
upload, an import, a cache entry being written) can be told from work whose process died.
A pid alone is reused; the pid with the process's start time is unique for the host's life."""

from __future__ import annotations

import os
import socket


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


# (pid, marker) of this process, made once per process (a forked child has another pid).
_own: tuple[int, str] | None = None


def local_marker() -> str:
    """``<pid>:<start time>`` of this process: for what only this host sees (a local cache).
    Read from /proc once per process: the kernel sums every thread's counters for it."""
    global _own
    pid = os.getpid()
    own = _own
    if own is None or own[0] != pid:
        own = _own = (pid, f"{pid}:{start_time(pid) or ''}")
    return own[1]


def local_alive(marker: str | None) -> bool:
    """Whether the process of a ``local_marker`` still runs."""
    pid, _, start = (marker or "").partition(":")
    return pid.isdigit() and start_time(int(pid)) == start


def host_marker() -> str:
    """``<host>:<pid>:<start time>`` of this process: for what every node sees (the database)."""
    return f"{socket.gethostname()}:{local_marker()}"


def host_alive(marker: str | None) -> bool | None:
    """True/False for a ``host_marker`` of this host; None when it names another host."""
    host, _, rest = (marker or "").partition(":")
    if host != socket.gethostname():
        return None
    return local_alive(rest)
