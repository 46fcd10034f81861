"""Processes the harness starts: started in their own session, stopped by PID, never by name.

Also the resident-memory sampler that sums RSS over a process tree read from /proc.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """One started process (and the children it forks) with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log: Path,
        env: dict | None = None,
        cwd: Path | None = None,
    ):
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._logf = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv,
            stdout=self._logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process, then its whole process group if it lingers; by PID only."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        # Workers orphaned in the process group we created for this process (pgid == pid).
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._logf.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_http(url: str, proc: Proc | None = None, timeout: float = 60.0, ok=(200, 300, 401)) -> None:
    """Poll ``url`` until it answers one of ``ok`` (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(
                f"{proc.name} exited ({proc.popen.returncode}); log {proc.log}:\n{proc.tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status in ok:
                    return
                last = str(resp.status)
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return
            last = str(exc.code)
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    tail = proc.tail() if proc else ""
    raise RuntimeError(f"{url} not ready after {timeout}s ({last})\n{tail}")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the ppid follows the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree_pids(roots: list[int], kids: dict[int, list[int]] | None = None) -> list[int]:
    """``roots`` and all their descendants; ``kids``: a parent -> children map already read."""
    kids = _children() if kids is None else kids
    seen: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo.extend(kids.get(pid, []))
    return seen


def _proc_kib(pid: int, name: str, key: str) -> int:
    """The ``key:`` line of /proc/<pid>/<name> (a size in KiB) in bytes; 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss_bytes(pid: int) -> int:
    return _proc_kib(pid, "status", "VmRSS")


def _pss_bytes(pid: int) -> int:
    return _proc_kib(pid, "smaps_rollup", "Pss")


def tree_rss(roots: list[int]) -> int:
    return sum(_rss_bytes(pid) for pid in tree_pids(roots))


def tree_pss(roots: list[int]) -> int:
    """Proportional set size: pages shared between the tree's processes counted once overall."""
    return sum(_pss_bytes(pid) for pid in tree_pids(roots))


class RssSampler:
    """Samples the summed RSS (and PSS) of process trees in a thread; peaks after the block."""

    def __init__(self, roots: list[int], interval: float = 0.05):
        self.roots = roots
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self.baseline = tree_rss(roots)
        self.samples = 0
        self.processes = len(tree_pids(roots))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = tree_pids(self.roots)
            self.processes = max(self.processes, len(pids))
            self.peak = max(self.peak, sum(_rss_bytes(pid) for pid in pids))
            self.peak_pss = max(self.peak_pss, sum(_pss_bytes(pid) for pid in pids))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


# -- CPU accounting --------------------------------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int | None:
    """utime + stime + cutime + cstime of ``pid`` in clock ticks (the process's own CPU and that
    of the children it has reaped); None if the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces and parentheses): state is field 3,
    # utime..cstime are fields 14-17 (proc(5)), i.e. indexes 11-14 after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15])


def cpu_snapshot(groups: dict[str, tuple[int, bool]]) -> dict[int, tuple[str, int]]:
    """CPU ticks of every process of each group, by PID, with the process's kind.

    ``groups``: name -> (root PID, split). A split group's root is ``"<name> master"`` and its
    descendants ``"<name> workers"`` (gunicorn, uwsgi); otherwise, and for a root serving alone
    (a glance-registry with ``workers = 0``), the whole tree is ``name`` (memcached, MariaDB,
    Keystone)."""
    kids = _children()
    out: dict[int, tuple[str, int]] = {}
    for name, (root, split) in groups.items():
        pids = tree_pids([root], kids)
        split = split and len(pids) > 1
        for pid in pids:
            ticks = _cpu_ticks(pid)
            if ticks is None:
                continue
            kind = name if not split else f"{name} master" if pid == root else f"{name} workers"
            out[pid] = (kind, ticks)
    return out


def cpu_delta(
    before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]], clk_tck: int = CLK_TCK
) -> dict[str, float]:
    """CPU seconds spent by each kind of process between two snapshots.

    A process present only in ``after`` (started meanwhile) counts from zero; one gone by
    ``after`` is not counted by itself, but its parent's ``cutime``/``cstime`` grew by what it
    spent once reaped."""
    out: dict[str, float] = {}
    for pid, (kind, ticks) in after.items():
        earlier = before.get(pid)
        spent = ticks - (earlier[1] if earlier else 0)
        out[kind] = out.get(kind, 0.0) + max(0, spent) / clk_tck
    for kind, _ticks in before.values():
        out.setdefault(kind, 0.0)
    return out


class CpuMeter:
    """CPU seconds per kind of process over a ``with`` block: ``meter.seconds`` afterwards."""

    def __init__(self, groups: dict[str, tuple[int, bool]]):
        self.groups = groups
        self.seconds: dict[str, float] = {}

    def __enter__(self) -> Self:
        self._before = cpu_snapshot(self.groups)
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = cpu_delta(self._before, cpu_snapshot(self.groups))
