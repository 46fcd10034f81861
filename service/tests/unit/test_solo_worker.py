"""The masterless worker's own duties (``common.solo_server``): systemd's watchdog fed from the
serving loop's heartbeat, and a reload that swaps the application only when the new one builds."""

from __future__ import annotations

import socket

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from glance_service.common import solo_server


class _App:
    """Stands in for ``wsgi_server._GunicornApplication``: builds numbered applications."""

    def __init__(self, reload_ok: bool = True):
        self.callable = None
        self.reload_ok = reload_ok
        self.built = 0

    def prepare_reload(self) -> bool:
        return self.reload_ok

    def wsgi(self):
        if self.callable is None:
            self.built += 1
            self.callable = f"app-{self.built}"
        return self.callable


def make_worker(app) -> solo_server.SoloWorker:
    cfg = Config()
    cfg.set("graceful_timeout", 3600)
    worker = solo_server.SoloWorker(0, 1, [], app, 30, cfg, glogging.Logger(cfg))
    worker.wsgi = app.wsgi()
    return worker


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield sock
    sock.close()


def received(sock) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except TimeoutError:
            return out


def test_watchdog_interval_is_half_of_systemds(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert solo_server._watchdog_interval() == 0
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    assert solo_server._watchdog_interval() == 30
    monkeypatch.setenv("WATCHDOG_PID", "1")  # another process is the one watched
    assert solo_server._watchdog_interval() == 0


def test_heartbeat_feeds_the_watchdog_at_most_every_interval(monkeypatch, notify_socket):
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    worker = make_worker(_App())
    worker.notify()
    worker.notify()
    assert received(notify_socket) == [b"WATCHDOG=1"]
    worker._next_watchdog = 0  # the interval has passed
    worker.notify()
    assert received(notify_socket) == [b"WATCHDOG=1"]


def test_no_watchdog_messages_when_systemd_does_not_watch(monkeypatch, notify_socket):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    worker = make_worker(_App())
    worker.notify()
    assert received(notify_socket) == []


def test_reload_swaps_the_application(monkeypatch):
    timers = []

    def timer(delay, fn, args):
        timers.append((delay, fn, args))
        return _Timer()

    monkeypatch.setattr(solo_server.threading, "Timer", timer)
    app = _App()
    worker = make_worker(app)
    assert worker.wsgi == "app-1"
    assert worker.reload() is True
    assert worker.wsgi == "app-2"
    # The old one is let go only after the grace the requests it serves are given.
    assert [(delay, args) for delay, _fn, args in timers] == [(3600, (["app-1"],))]


def test_refused_reload_keeps_the_application():
    app = _App(reload_ok=False)
    worker = make_worker(app)
    assert worker.reload() is False
    assert worker.wsgi == "app-1"
    assert app.built == 1


def test_release_closes_the_old_application_and_refreezes():
    closed = []

    class Old:
        def close(self):
            closed.append(True)

    import gc

    solo_server._release([Old()])
    assert closed == [True]
    assert gc.get_freeze_count() > 0
    gc.unfreeze()


class _Timer:
    daemon = False

    def start(self) -> None:
        pass
