"""Prometheus metrics of glance-api and glance-registry (``[metrics] enable_prometheus``, off by default).

Where they are served: the same gunicorn workers, on a second listening socket of their own
(``[metrics] bind_host``/``port``, the management address; the load balancer forwards only
the API port), at ``[metrics] path``. A request on that socket gets the metrics or a 404,
never the API; the API port has no metrics path. Every worker writes its values to files in
a directory private to the service (prometheus_client's multiprocess mode: the master sets
``PROMETHEUS_MULTIPROC_DIR`` and empties it at start, and removes a dead worker's live gauges
in gunicorn's ``child_exit`` hook), and the worker that answers a scrape sums them all.

Off, the feature costs nothing: prometheus_client is never imported, no hook is installed, and
the calls at the measuring points are a function call that finds ``_live`` empty.

What is measured:
- ``glance_http_requests_total{route,method,status}`` and the latency histogram
  ``glance_http_request_duration_seconds{route,method}``: gunicorn's pre/post-request hooks,
  the time from the request's headers to the last byte of the response. ``route`` is the
  router's route template (glance-api) or the registry operation (glance-registry), never the
  raw path; ``/healthcheck``, and ``other`` for what no route matched (versions, 404s).
- ``glance_image_uploaded_bytes_total`` (image data received by uploads and staging),
  ``glance_image_downloaded_bytes_total`` (image data sent, ``sendfile`` included).
- ``glance_uploads_in_progress``, ``glance_imports_in_progress`` (live gauges: summed over
  the live workers).
- ``glance_store_operation_duration_seconds{store,operation}`` and
  ``glance_store_operation_errors_total{store,operation}`` (``add``, ``stage``, ``open``,
  ``delete``; an error is a failure of the store, not the client's: 5xx or no service error).
- ``glance_registry_client_call_duration_seconds{operation}`` and
  ``glance_registry_client_call_errors_total{operation}`` (glance-api's calls to the registry;
  an error is a registry that is unreachable, timed out or answered 5xx).
- ``glance_images{status}`` and ``glance_images_oldest_update_age_seconds{status}`` (where the
  database is: glance-registry, or glance-api with ``data_api = database``): one grouped
  query at scrape time. An upload refreshes its image every minute or so, so an age of many
  minutes in ``saving`` is an upload nobody is doing any more.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable

from oslo_config import cfg

GROUP = "metrics"

# Each service's own default port, next to its API port.
DEFAULT_PORTS = {"glance-api": 9293, "glance-registry": 9192}

metrics_opts = [
    cfg.BoolOpt(
        "enable_prometheus",
        default=False,
        help="Serve Prometheus metrics on a listening socket of their own (bind_host, port, "
        "path). Off: prometheus_client is not even imported.",
    ),
    cfg.HostAddressOpt(
        "bind_host",
        default="127.0.0.1",
        help="Address of the metrics socket: the host's management address, never the public "
        "VIP (the load balancer forwards only the API port).",
    ),
    cfg.PortOpt(
        "port",
        help="Port of the metrics socket (default: 9293 for glance-api, 9192 for "
        "glance-registry). Must differ from the API port.",
    ),
    cfg.StrOpt("path", default="/metrics", help="The path that answers with the metrics."),
    cfg.StrOpt(
        "multiproc_dir",
        help="Directory for the workers' metric files (emptied when the service starts). "
        "Default: 'metrics' in systemd's RuntimeDirectory ($RUNTIME_DIRECTORY), else a "
        "private temporary directory removed when the service stops.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(metrics_opts, group=GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [(GROUP, metrics_opts)]


def port_of(conf: cfg.ConfigOpts, proc_name: str) -> int:
    return conf.metrics.port or DEFAULT_PORTS.get(proc_name, 9293)


# -- the measuring points (no-ops while _live is None) ---------------------------------------
_live: _Metrics | None = None
_NULL = contextlib.nullcontext()
_image_counter: Callable[[], list] | None = None


def active() -> bool:
    return _live is not None


def received(data: bytes) -> bytes:
    """``data``, counted as image data received from a client (upload or stage)."""
    if _live is not None and data:
        _live.uploaded.inc(len(data))
    return data


def uploading():
    """Around an upload or a stage: the uploads in progress."""
    return _NULL if _live is None else _live.uploads.track_inprogress()


def importing():
    """Around an import task's run: the imports in progress."""
    return _NULL if _live is None else _live.imports.track_inprogress()


def store_operation(store: str | None, operation: str):
    """Around a store operation: its latency, and its errors (see ``_is_failure``)."""
    if _live is None:
        return _NULL
    return _Timed(_live, _live.store_seconds, _live.store_errors, (store or "unknown", operation))


def registry_call(operation: str):
    """Around glance-api's call to glance-registry: its latency and errors."""
    if _live is None:
        return _NULL
    return _Timed(_live, _live.registry_seconds, _live.registry_errors, (operation,))


def count_images_with(counter: Callable[[], list] | None) -> None:
    """Where the database is: ``counter()`` returns ``[(status, count, oldest update age in
    seconds or None)]`` for the images not deleted; queried at each scrape."""
    global _image_counter
    _image_counter = counter


class _Timed:
    """Around one operation: its latency into ``histogram``, a failure into ``errors``. The
    labelled children are looked up once per metric and label values (``_Metrics.children``)."""

    __slots__ = ("_pair", "_started")

    def __init__(self, live: _Metrics, histogram, errors, labels: tuple):
        key = (id(histogram), labels)  # the histograms live as long as ``live``
        pair = live.children.get(key)
        if pair is None:
            pair = live.children[key] = (histogram.labels(*labels), errors.labels(*labels))
        self._pair = pair

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, exc_type, exc, tb) -> None:
        self._pair[0].observe(time.perf_counter() - self._started)
        if exc is not None and _is_failure(exc):
            self._pair[1].inc()


def _is_failure(exc: BaseException) -> bool:
    """The service's failure, not the client's: no service error (an OSError, a driver's
    exception), or one with a 5xx code (registry unavailable, store unavailable)."""
    code = getattr(exc, "code", None)
    return not isinstance(code, int) or code >= 500


class _Metrics:
    """This worker's metric objects: prometheus_client's multiprocess values (files), read by
    the scrape's ``MultiProcessCollector``; registered nowhere else (``registry=None``)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        own = {"registry": None}
        self.children: dict[tuple, tuple] = {}  # (metric, label values) -> labelled children
        self.requests = Counter(
            "glance_http_requests", "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"], **own,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "glance_http_request_duration_seconds",
            "Time from a request's headers to the last byte of its response.",
            ["route", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            **own,
        )
        self.uploaded = Counter(
            "glance_image_uploaded_bytes", "Image data received by uploads and staging.", **own
        )
        self.downloaded = Counter("glance_image_downloaded_bytes", "Image data sent by downloads.", **own)
        self.uploads = Gauge(
            "glance_uploads_in_progress", "Uploads and stagings in progress.",
            multiprocess_mode="livesum", **own,
        )  # fmt: skip
        self.imports = Gauge(
            "glance_imports_in_progress", "Import tasks running.", multiprocess_mode="livesum", **own
        )
        self.store_seconds = Histogram(
            "glance_store_operation_duration_seconds",
            "Store operations (add and stage: the whole write; open: until the data can be read).",
            ["store", "operation"],
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800),
            **own,
        )
        self.store_errors = Counter(
            "glance_store_operation_errors", "Store operations that failed (the store's failure).",
            ["store", "operation"], **own,
        )  # fmt: skip
        self.registry_seconds = Histogram(
            "glance_registry_client_call_duration_seconds", "glance-api's calls to glance-registry.",
            ["operation"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            **own,
        )  # fmt: skip
        self.registry_errors = Counter(
            "glance_registry_client_call_errors",
            "glance-api's calls to glance-registry that failed (unreachable, timed out, 5xx).",
            ["operation"],
            **own,
        )


# -- the master: the workers' directory and gunicorn's options -----------------------------
_master_dir: str | None = None


def gunicorn_options(conf: cfg.ConfigOpts, proc_name: str, options: dict) -> dict:
    """``options`` with the metrics socket and hooks added when ``[metrics] enable_prometheus`` (else
    unchanged). In the master, before any worker: the first call prepares the directory."""
    register_opts(conf)
    if not conf.metrics.enable_prometheus:
        return options
    port = port_of(conf, proc_name)
    address = _bind_address(conf.metrics.bind_host, port)
    if address in options["bind"]:
        raise ValueError(f"[metrics] {address} is the API's own address: choose another [metrics] port.")
    _prepare_directory(conf, proc_name)
    from prometheus_client import multiprocess

    hooks = request_hooks(port, conf.metrics.path)
    hooks["child_exit"] = lambda server, worker: multiprocess.mark_process_dead(worker.pid)
    return {**_chain(options, hooks), "bind": [*options["bind"], address]}


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _prepare_directory(conf: cfg.ConfigOpts, proc_name: str) -> None:
    global _master_dir
    if _master_dir is not None:
        return
    path = conf.metrics.multiproc_dir
    if not path and os.environ.get("RUNTIME_DIRECTORY"):
        path = os.path.join(os.environ["RUNTIME_DIRECTORY"].split(":")[0], "metrics")
    if path:
        os.makedirs(path, mode=0o700, exist_ok=True)
        for name in os.listdir(path):  # a previous run's values
            if name.endswith(".db"):
                os.unlink(os.path.join(path, name))
    else:
        import atexit

        path = tempfile.mkdtemp(prefix=f"{proc_name}-metrics-")
        master = os.getpid()
        atexit.register(lambda: os.getpid() == master and shutil.rmtree(path, ignore_errors=True))
    # Read by prometheus_client when it is first imported: here, and inherited by the workers.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    _master_dir = path


def _chain(options: dict, hooks: dict) -> dict:
    """``options`` with each hook of ``hooks`` run after the one already there."""
    out = dict(options)
    for name, hook in hooks.items():
        first = options.get(name)
        if first is None:
            out[name] = hook
        else:
            out[name] = _both(first, hook)
    return out


def _both(first: Callable, second: Callable) -> Callable:
    """Both hooks, with the number of arguments gunicorn checks a hook for."""
    arity = len(inspect.signature(first).parameters)
    if arity == 1:
        return lambda a: (first(a), second(a))[-1]
    if arity == 2:
        return lambda a, b: (first(a, b), second(a, b))[-1]
    if arity == 4:
        return lambda a, b, c, d: (first(a, b, c, d), second(a, b, c, d))[-1]
    raise TypeError(f"no gunicorn hook takes {arity} arguments")


def request_hooks(port: int, path: str) -> dict:
    """gunicorn's hooks of a worker: the metric objects once it has built its app, and each
    request's route, status and duration after its response is sent."""
    metrics_port = str(port)
    file_route = "/v2/images/{image_id}/file"
    children: dict[tuple, tuple] = {}

    def post_worker_init(worker) -> None:
        global _live
        _live = _Metrics()

    def pre_request(worker, req) -> None:
        req.glance_started = time.perf_counter()

    def post_request(worker, req, environ, resp) -> None:
        live = _live
        if live is None or resp is None or environ.get("SERVER_PORT") == metrics_port:
            return
        route = environ.get("glance.route") or _route_of(environ.get("PATH_INFO") or "")
        method = req.method if req.method in _METHODS else "other"
        key = (route, method, resp.status_code or 500)
        pair = children.get(key)
        if pair is None:
            # The labelled children, looked up once per route, method and status (the
            # lookups were a third of the hooks' time).
            pair = children[key] = (
                live.requests.labels(route, method, str(key[2])),
                live.request_seconds.labels(route, method),
            )
        pair[0].inc()
        pair[1].observe(time.perf_counter() - req.glance_started)
        if route == file_route and method == "GET":
            sent = resp.sent
            if not sent and resp.headers_sent and sys.exc_info()[0] is None:
                # sendfile(2) does not count what it sent: all of it, since nothing failed.
                sent = resp.response_length or 0
            if sent:
                live.downloaded.inc(sent)

    return {"post_worker_init": post_worker_init, "pre_request": pre_request, "post_request": post_request}


# Methods that are label values as they are; any other (a client's invention) is "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route_of(path: str) -> str:
    return "/healthcheck" if path.startswith("/healthcheck") else "other"


# -- the worker: the metrics socket's application --------------------------------------------
def serving(app: Callable, conf: cfg.ConfigOpts, proc_name: str) -> Callable:
    """``app`` behind the metrics endpoint when ``[metrics] enable_prometheus`` (else ``app`` itself)."""
    register_opts(conf)
    if not conf.metrics.enable_prometheus:
        return app
    return MetricsEndpoint(app, port_of(conf, proc_name), conf.metrics.path)


class MetricsEndpoint:
    """Requests that came in on the metrics socket (gunicorn's ``SERVER_PORT`` is the
    listening socket's own port, whatever the Host header says) get the metrics at ``path``
    and a 404 elsewhere; the others go to the application."""

    def __init__(self, app: Callable, port: int, path: str):
        self.app = app
        self.port = str(port)
        self.path = path
        self._registry = None

    def __call__(self, environ: dict, start_response: Callable):
        if environ.get("SERVER_PORT") != self.port:
            return self.app(environ, start_response)
        if environ.get("PATH_INFO") != self.path or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            body = b"Not Found: metrics only here.\n"
            headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            start_response("404 Not Found", headers)
            return [body]
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(self.registry())
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    def registry(self):
        if self._registry is None:
            from prometheus_client import CollectorRegistry
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            if _image_counter is not None:
                registry.register(_ImageCollector(_image_counter))
            self._registry = registry
        return self._registry


class _ImageCollector:
    """``glance_images{status}`` and the age of the least recently updated image of each
    status, from one grouped query per scrape."""

    def __init__(self, counter: Callable[[], list]):
        self._counter = counter

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        count = GaugeMetricFamily("glance_images", "Images not deleted, by status.", labels=["status"])
        age = GaugeMetricFamily(
            "glance_images_oldest_update_age_seconds",
            "Seconds since the least recently updated image of each status was updated.",
            labels=["status"],
        )
        for status, number, oldest in self._counter():
            count.add_metric([status], number)
            if oldest is not None:
                age.add_metric([status], oldest)
        yield count
        yield age

    def describe(self):
        return []
