"""The gthread worker's liveness heartbeat (common/thread_worker.py): gunicorn touches the
worker's temp file (``os.utime``) at every pass of its event loop, that is on every request;
ours at most every ``min(1 s, timeout / 4)``, still far inside the arbiter's ``timeout``."""

from __future__ import annotations

from gunicorn.workers import gthread
from oslo_config import cfg

from glance_service.common import config, thread_worker, wsgi_server


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def _worker(timeout: float, touched: list[float], clock: Clock):
    worker = thread_worker.ThreadWorker.__new__(thread_worker.ThreadWorker)
    worker.timeout = timeout

    class Tmp:
        def notify(self):
            touched.append(clock.now)

    worker.tmp = Tmp()
    return worker


def test_options_use_the_throttled_worker():
    conf = cfg.ConfigOpts()
    conf.register_opts(config.server_opts(9191))
    conf.register_opt(cfg.BoolOpt("debug", default=False))
    conf([])
    wsgi_server.register_opts(conf)
    assert wsgi_server.gunicorn_options(conf, "glance-registry")["worker_class"] is thread_worker.ThreadWorker
    assert issubclass(thread_worker.ThreadWorker, gthread.ThreadWorker)


def test_the_heartbeat_is_throttled_but_never_late(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(thread_worker.time, "monotonic", clock)
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
