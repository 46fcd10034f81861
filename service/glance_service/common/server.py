"""Serving a WSGI application with gunicorn.

gunicorn's threaded worker gives HTTP/1.1 keep-alive, chunked request bodies (glanceclient
and Nova upload chunked) and ``wsgi.file_wrapper`` backed by ``sendfile(2)`` for downloads.
The application is built in each worker after the fork, so database engines, registry
connections and store handles are never shared between processes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

from gunicorn.app.base import BaseApplication
from oslo_config import cfg


def default_workers() -> int:
    return max(1, min(multiprocessing.cpu_count(), 8))


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _GunicornApplication(BaseApplication):
    def __init__(self, app_factory: Callable[[], Callable], options: dict):
        self._app_factory = app_factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable:
        return self._app_factory()


def gunicorn_options(conf: cfg.ConfigOpts, proc_name: str) -> dict:
    keepalive = conf.http_keepalive_timeout
    return {
        "bind": [bind_address(conf.bind_host, conf.bind_port)],
        "workers": conf.workers or default_workers(),
        "worker_class": "gthread",
        "threads": conf.threads_per_worker,
        "backlog": conf.backlog,
        "keepalive": keepalive,
        "timeout": conf.client_socket_timeout,
        "graceful_timeout": 30,
        "proc_name": proc_name,
        "preload_app": False,
        # gunicorn's own access log is off: the service logs requests through oslo.log.
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "debug" if conf.debug else "info",
        # Image names and filters can make long query strings.
        "limit_request_line": 16384,
        "limit_request_field_size": 16384,
        "forwarded_allow_ips": "127.0.0.1,::1",
        # gunicorn's control socket defaults to one path per user: glance-api and
        # glance-registry on one host would take it from each other. Nothing uses it.
        "control_socket_disable": True,
    }


def serve(app_factory: Callable[[], Callable], conf: cfg.ConfigOpts, proc_name: str, **overrides) -> None:
    """Run the WSGI app built by ``app_factory`` until the process is told to stop."""
    options = gunicorn_options(conf, proc_name)
    options.update(overrides)
    _GunicornApplication(app_factory, options).run()
