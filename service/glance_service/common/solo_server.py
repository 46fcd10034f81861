"""One serving process and no master: gunicorn's worker run in the main process (``workers = 0``).

A gunicorn master holds 33-34 MiB to supervise its workers (issue 17: gunicorn's import alone
is 22 MiB over a bare interpreter). glance-registry serves from one worker when the metadata
cache is on, so there its master is a second process doing nothing a service manager cannot
do: systemd restarts a process that died (``Restart=on-failure``) and, through the watchdog,
one that hangs (``WatchdogSec``; the worker's heartbeat becomes ``WATCHDOG=1``).

What changes against the master-and-workers model (``common.wsgi_server``):

- **Reload** (SIGHUP, the units' ``ExecReload``) happens in place: the new configuration is
  first built by a throw-away process (``check_in_fresh_interpreter``), then the files are
  re-read, a new application is built in this process and takes every request that starts
  from then on; requests already running finish on the old one, which is let go a
  ``graceful_shutdown_timeout`` later. A configuration that cannot build is refused and the
  old application keeps serving. The process, its listening socket, its kept-alive
  connections and its PID stay. Options read only at start (listen address, threads,
  ``workers``) need a restart, as with gunicorn's own reload.
- **A crash** is a restart by systemd: connections are refused until the process listens
  again (about two seconds), where a master would have kept the socket open; glance-api's
  recovery of interrupted uploads then runs at the start, as after any restart. A start-up
  recovery that could not finish is not retried until the next start (a master retries it
  from a fork; a process serving with threads must not fork to run library code).
- **The reload's check** runs in a fresh interpreter (``cmd.reload_check``), not a fork, for
  the same reason: a serving thread may hold a lock at the moment of the fork.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time

from gunicorn import sock as gunicorn_sock
from gunicorn import systemd
from oslo_log import log as logging

from glance_service.common.thread_worker import ThreadWorker

LOG = logging.getLogger(__name__)


class SoloWorker(ThreadWorker):
    """The threaded worker serving as the whole server: it reloads in place on SIGHUP, tells
    systemd it is ready and alive, and has no master to lose."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._reload_requested = threading.Event()
        self._watchdog_interval = _watchdog_interval()
        self._next_watchdog = 0.0

    def init_signals(self) -> None:
        super().init_signals()
        # gunicorn's worker leaves SIGHUP at its default (death); here it asks for a reload.
        signal.signal(signal.SIGHUP, self._handle_hup)
        systemd.sd_notify("READY=1\nSTATUS=serving from one process", self.log)

    def _handle_hup(self, sig, frame) -> None:
        self._reload_requested.set()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        threading.Thread(target=self._reload_loop, name="reload", daemon=True).start()

    def is_parent_alive(self) -> bool:
        return True  # no master: the parent is the service manager (or whoever started us)

    def notify(self) -> None:
        super().notify()
        if self._watchdog_interval:
            now = time.monotonic()
            if now >= self._next_watchdog:
                self._next_watchdog = now + self._watchdog_interval
                systemd.sd_notify("WATCHDOG=1", self.log)

    def _reload_loop(self) -> None:
        while self.alive:
            if not self._reload_requested.wait(1.0):
                continue
            self._reload_requested.clear()
            try:
                self.reload()
            except Exception:  # noqa: BLE001 - a reload must never take the server down
                LOG.exception("Reload failed; the previous application keeps serving")

    def reload(self) -> bool:
        """Swap in an application built from the configuration as it is now; False (the
        running one stays) when it cannot be built."""
        if not self.app.prepare_reload():
            return False
        old = self.wsgi
        self.app.callable = None  # BaseApplication.wsgi() builds anew
        self.wsgi = self.app.wsgi()
        LOG.info("Reloaded: new requests are served with the re-read configuration")
        release = threading.Timer(self.cfg.graceful_timeout, _release, args=([old],))
        release.daemon = True
        release.start()
        return True


def _release(holder: list) -> None:
    """Let the replaced application go once its requests had their time: start-up's objects
    were frozen out of the collector (``wsgi_server.worker_hooks``), the old application's
    among them; unfrozen, collected (database pools and sockets close with their objects),
    and what lives on frozen again."""
    old = holder.pop()
    close = getattr(old, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001 - best effort: the collection below frees it anyway
            LOG.exception("Closing the replaced application failed")
    del old, close
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _watchdog_interval() -> float:
    """Half of systemd's ``WatchdogSec`` when it watches this process, else 0."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return 0.0
    try:
        return int(usec) / 2e6
    except ValueError:
        return 0.0


def run(gunicorn_app) -> None:
    """Serve ``gunicorn_app`` (a gunicorn ``BaseApplication``) from this process until told to
    stop (SIGTERM: the requests in flight finish within ``graceful_timeout``)."""
    cfg = gunicorn_app.cfg
    log = cfg.logger_class(cfg)
    listen_fds = systemd.listen_fds()
    fds = range(systemd.SD_LISTEN_FDS_START, systemd.SD_LISTEN_FDS_START + listen_fds) if listen_fds else None
    listeners = gunicorn_sock.create_sockets(cfg, log, fds)
    log.info("Listening at: %s (%s), one process", ",".join(str(x) for x in listeners), os.getpid())
    worker = SoloWorker(0, os.getppid(), listeners, gunicorn_app, cfg.timeout / 2.0, cfg, log)
    worker.pid = os.getpid()
    try:
        worker.init_process()
    finally:
        worker.tmp.close()
    sys.exit(0)
