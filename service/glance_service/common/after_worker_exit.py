"""Work the gunicorn master has done, in a forked child, after one of its workers exited.

A worker that dies while the master lives (killed, out of memory, stopped at the end of a
graceful timeout) leaves its work half done: an upload ``saving`` with a partial file, an
import task ``processing``. glance-api's recovery of such work ran only when the service
started, so the image waited for the next restart. The master now runs the same recovery
again after a worker exit, in a forked child like the start-up one (what the recovery
imports never stays in the master). One child at a time: exits meanwhile ask for one more
run after it; a run that failed (the registry unreachable) is tried again after
``retry_seconds``. The recovery itself leaves live uploads and tasks alone (their process
markers name live workers), so running it while the other workers serve is safe.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# Signals gunicorn's arbiter handles by queueing them for its loop: a child forked from the
# arbiter must react to them as a plain process does (systemd stopping the service).
_ARBITER_SIGNALS = [
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
    signal.SIGCHLD,
]

OK = b"1"
# What ps and psutil show for the child (its command line stays the master's).
CHILD_NAME = "glance-recovery"


class AfterWorkerExit:
    """``task`` (True when it succeeded) run by a forked child after a worker exit.

    ``worker_exited`` is gunicorn's ``child_exit`` hook; ``poll`` is called from the arbiter's
    loop (about once a second): it starts the child when one is wanted and none runs, and
    collects the result of the one that runs. The child's result comes back through a pipe:
    gunicorn reaps every child itself (an unknown one silently), so its exit status is lost.
    """

    def __init__(
        self,
        task: Callable[[], bool],
        what: str,
        retry_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._task = task
        self._what = what
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._wanted = False
        self._not_before = 0.0
        self._result: int | None = None  # read end of the running child's pipe
        self.runs = 0

    def worker_exited(self, arbiter=None, worker=None) -> None:
        self._wanted = True

    def retry_later(self) -> None:
        """Ask for a run after ``retry_seconds`` (the start-up recovery failed, say)."""
        self._wanted = True
        self._not_before = self._clock() + self._retry_seconds

    @property
    def running(self) -> bool:
        return self._result is not None

    def poll(self) -> None:
        if self._result is not None and not self._collect():
            return
        if self._wanted and self._clock() >= self._not_before:
            self._wanted = False
            self._start()

    def _start(self) -> None:
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the arbiter's code
            os.close(read_end)
            ok = False
            try:
                for sig in _ARBITER_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                signal.set_wakeup_fd(-1)
                _name_this_process(CHILD_NAME)
                ok = bool(self._task())
            except BaseException:
                LOG.exception("%s failed", self._what)
            finally:
                try:
                    os.write(write_end, OK if ok else b"0")
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(0 if ok else 1)
        os.close(write_end)
        os.set_blocking(read_end, False)
        self._result = read_end
        self.runs += 1
        LOG.info("%s started (pid %d) after a worker exit", self._what, pid)

    def _collect(self) -> bool:
        """True once the running child has finished (its result handled)."""
        assert self._result is not None
        try:
            answer = os.read(self._result, 1)
        except BlockingIOError:
            return False
        os.close(self._result)
        self._result = None
        if answer != OK:  # b"0", or b"" when the child died without answering
            LOG.warning("%s did not complete; trying again in %d s", self._what, self._retry_seconds)
            self.retry_later()
        return True


def _name_this_process(name: str) -> None:
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass
