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


# -- the new configuration checked in a fresh interpreter, never in a fork -------------------------


def _conf(tmp_path, workers: int):
    from oslo_config import cfg

    from glance_service.common import config, wsgi_server

    conf_file = tmp_path / "service.conf"
    conf_file.write_text(f"[DEFAULT]\nworkers = {workers}\n")
    conf = cfg.ConfigOpts()
    conf.register_opts(config.server_opts(9191))
    conf(["--config-file", str(conf_file)])
    wsgi_server.register_opts(conf)
    return conf


def _command(tmp_path, body: str) -> list[str]:
    """A check command that records the arguments it got, then runs ``body``."""
    import sys

    record = tmp_path / "args"
    script = f"import sys; open({str(record)!r}, 'w').write(' '.join(sys.argv[1:]))\n{body}"
    return [sys.executable, "-c", script]


def test_fresh_interpreter_check_gets_the_config_files(tmp_path):
    from glance_service.common import wsgi_server

    conf = _conf(tmp_path, 0)
    assert wsgi_server.check_in_fresh_interpreter(_command(tmp_path, "print('ok')"), conf, 30) is None
    assert (tmp_path / "args").read_text() == f"--config-file {tmp_path / 'service.conf'}"


def test_fresh_interpreter_check_reports_the_reason(tmp_path):
    from glance_service.common import wsgi_server

    conf = _conf(tmp_path, 0)
    said = "print('building'); print('ValueError: default_backend must name one of'); sys.exit(1)"
    assert (
        wsgi_server.check_in_fresh_interpreter(_command(tmp_path, said), conf, 30)
        == "ValueError: default_backend must name one of"
    )
    crashed = wsgi_server.check_in_fresh_interpreter(_command(tmp_path, "raise SystemExit('boom')"), conf, 30)
    assert crashed == "the check process failed: boom"
    slow = wsgi_server.check_in_fresh_interpreter(_command(tmp_path, "import time; time.sleep(30)"), conf, 1)
    assert slow == "building the application took more than 1 s"


def test_masterless_reload_never_forks_to_check(tmp_path, monkeypatch):
    """Its serving threads may hold locks when it forks: the check runs the command instead."""
    from glance_service.common import wsgi_server

    def no_fork():
        raise AssertionError("a process serving with threads forked")

    monkeypatch.setattr(wsgi_server.os, "fork", no_fork)
    conf = _conf(tmp_path, 0)
    app = wsgi_server._GunicornApplication(
        lambda: None, lambda: {}, conf, check_command=_command(tmp_path, "print('ok')")
    )
    assert app.prepare_reload() is True
    assert (tmp_path / "args").exists()
    refused = wsgi_server._GunicornApplication(
        lambda: None, lambda: {}, conf, check_command=_command(tmp_path, "print('no'); sys.exit(1)")
    )
    assert refused.prepare_reload() is False


def test_reload_with_a_master_checks_in_a_fork(tmp_path, monkeypatch):
    """With a master (no serving threads) the fork check stays: it builds the factory itself."""
    from glance_service.common import wsgi_server

    seen = []
    monkeypatch.setattr(wsgi_server, "check_new_config", lambda conf, factory, timeout: seen.append(timeout))
    conf = _conf(tmp_path, 2)
    app = wsgi_server._GunicornApplication(lambda: None, lambda: {}, conf, check_command=["false"])
    assert app.prepare_reload() is True
    assert seen == [conf.reload_check_timeout]
