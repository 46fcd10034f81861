"""``--profile``: py-spy sampling a service's workers during the recorded GET run, and the top
functions of what it saw (bench/README.md). Sampling takes CPU from the same two cores: the
figures of a profiled run are not comparable with an unprofiled one."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"


def available() -> str | None:
    """The py-spy binary (the venv's, else one on PATH), or None."""
    return str(PY_SPY) if PY_SPY.exists() else shutil.which("py-spy")


def _frame_name(frame: str) -> str:
    """``handle (glance_service/api/images.py:120)`` -> ``handle (glance_service/api/images.py)``:
    one entry per function, whatever line of it was running."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    path = re.sub(r"^.*/(site-packages|lib/python3\.\d+)/", "", path)
    return f"{name} ({path})" if path else name


# Frames under every thread's stack: on top of the "total" list they would say nothing.
_PLUMBING = ("(threading.py)", "(concurrent/futures/thread.py)")


def top_functions(raw: str, count: int = 15) -> dict:
    """From py-spy's ``raw`` output (collapsed stacks, "frame;frame;... samples"): the functions
    with the most samples on top of the stack (self) and anywhere on it (total), in percent."""
    own: Counter = Counter()
    total: Counter = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        n = int(number)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for name in set(frames):
            if not name.endswith(_PLUMBING):
                total[name] += n
    if not samples:
        return {"samples": 0, "self": [], "total": []}
    return {
        "samples": samples,
        "self": [(name, 100 * n / samples) for name, n in own.most_common(count)],
        "total": [(name, 100 * n / samples) for name, n in total.most_common(count)],
    }


@contextmanager
def record(pids: dict[str, int], seconds: int, directory: Path):
    """py-spy on each ``name -> master PID`` (with its workers) for ``seconds``; yields a dict
    filled, after the block, with ``name -> top_functions``."""
    binary = available()
    out: dict = {}
    procs = []
    if binary:
        directory.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            path = directory / f"{name}-{pid}.txt"
            argv = [binary, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "-r", "100",
                    "-d", str(seconds), "-f", "raw", "-o", str(path)]  # fmt: skip
            procs.append(
                (name, path, subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            )
    try:
        yield out
    finally:
        for name, path, proc in procs:
            try:
                _, err = proc.communicate(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if path.exists():
                out[name] = top_functions(path.read_text(errors="replace"))
            else:
                out[name] = {"error": err.decode(errors="replace")[-500:]}
