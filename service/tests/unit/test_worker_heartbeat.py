"""The gthread worker's liveness heartbeat (common/wsgi_server.py): gunicorn touches the
worker's temp file (``os.utime``) at every pass of its event loop, that is on every request;
ours at most every ``min(1 s, timeout / 4)``, still far inside the arbiter's ``timeout``."""

from __future__ import annotations

from glance_service.common import wsgi_server


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def _worker(timeout: float, touched: list[float], clock: Clock):
    worker = wsgi_server.ThreadWorker.__new__(wsgi_server.ThreadWorker)
    worker.timeout = timeout

    class Tmp:
        def notify(self):
            touched.append(clock.now)

    worker.tmp = Tmp()
    return worker


def test_options_use_the_throttled_worker():
    assert issubclass(wsgi_server.ThreadWorker, wsgi_server.gthread.ThreadWorker)


def test_the_heartbeat_is_throttled_but_never_late(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(wsgi_server.time, "monotonic", clock)
    touched: list[float] = []
    worker = _worker(900, touched, clock)
    for _ in range(1000):  # a busy loop: many passes within a second
        worker.notify()
        clock.now += 0.001
    assert touched == [100.0]
    clock.now = 101.0
    worker.notify()
    assert touched == [100.0, 101.0]
    short: list[float] = []
    quick = _worker(2, short, clock)
    quick.notify()
    clock.now += 0.5
    quick.notify()
    assert short == [101.0, 101.5]
