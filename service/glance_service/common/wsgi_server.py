"""Serving a WSGI application with gunicorn.

gunicorn's threaded worker gives HTTP/1.1 keep-alive, chunked request bodies (glanceclient
and Nova upload chunked) and ``wsgi.file_wrapper`` backed by ``sendfile(2)`` for downloads.
The application is built in each worker after the fork, so database engines, registry
connections and store handles are never shared between processes.

Reloading (SIGHUP to the master, the units' ``ExecReload``) applies a changed configuration
without dropping a request: the master keeps the listening socket, re-reads the config
files, forks new workers that build the application from them, and stops the old workers
gracefully (they finish the requests they are serving, answer a request already on a kept-alive
connection with ``Connection: close``, and accept nothing new). A configuration the application
cannot be built from is refused before any worker is replaced: the old workers keep serving
and the error is logged.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import importlib.util
import multiprocessing
import os
import select
import site
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from oslo_config import cfg
from oslo_log import log as logging

from glance_service.common import metrics, solo_server
from glance_service.common.accept_balance import ConnectionTable
from glance_service.common.after_worker_exit import AfterWorkerExit
from glance_service.common.registrar import registrar
from glance_service.common.request_log import AccessLogger
from glance_service.common.thread_worker import ThreadWorker

LOG = logging.getLogger(__name__)

# duplicates: oslo.config declarations look alike in every module (options are declared
# where they are read, in oslo's one shape); what they share is the library's form.
reload_opts = [
    cfg.IntOpt(
        "graceful_shutdown_timeout",
        default=120,
        min=1,
        help="Seconds a worker being replaced (reload) or stopped may take to finish the requests "
        "it is serving, such as a long image download, before it is stopped anyway.",
    ),
    cfg.IntOpt(
        "reload_check_timeout",
        default=120,
        min=1,
        help="Seconds a reload may take to build the application from the new configuration "
        "(in a throw-away process) before the reload is refused.",
    ),
]


memory_opts = [
    cfg.FloatOpt(
        "memory_trim_interval",
        default=2.0,
        min=0,
        help="Seconds between checks whether a worker is idle (no request in flight, some served "
        "since the last check); an idle worker gives the memory its requests freed back to the "
        "system (glibc malloc_trim). 0 disables.",
    ),
]


register_opts = registrar((None, reload_opts), (None, memory_opts))


def default_workers() -> int:
    return max(1, min(multiprocessing.cpu_count(), 8))


def _libc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


class IdleMemoryTrimmer:
    """Gives the heap memory a worker's requests freed back to the system once it is idle.

    glibc keeps freed memory in its arenas for reuse and returns only what lies at the top of a
    heap: after two benchmark rounds (uploads, 1000 small images, lists, concurrent GETs) a
    glance-api worker held 111 MiB where a fresh one holds 76, and ``malloc_trim(0)`` brought it
    back to 80; the six processes summed 422 MiB, 352 with the trimmer. The check runs
    in a thread of each worker every ``interval`` seconds and trims only when no request is in
    flight and some were served since the last trim, so a busy worker is left alone and an idle
    one is trimmed once.
    """

    def __init__(self, interval: float, trim: Callable[[int], int] | None = None):
        self.interval = interval
        self._trim = trim
        self._lock = threading.Lock()
        self._in_flight = 0
        self._served = 0

    @property
    def enabled(self) -> bool:
        return self.interval > 0 and self._trim is not None

    def request_started(self) -> None:
        with self._lock:
            self._in_flight += 1

    def request_finished(self) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._served += 1

    def trim_if_idle(self) -> bool:
        """Trim now if the worker is idle and served requests since the last trim."""
        with self._lock:
            if self._in_flight or not self._served:
                return False
            self._served = 0
        self._trim(0)
        return True

    def start(self) -> None:
        """In the worker, after the fork: the checking thread (a daemon: it never delays exit)."""
        if self.enabled:
            threading.Thread(target=self._run, name="memory-trim", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            self.trim_if_idle()

    def gunicorn_hooks(self) -> dict:
        """gunicorn server hooks that feed the trimmer (none when it is disabled)."""
        if not self.enabled:
            return {}
        return {
            "post_worker_init": lambda worker: self.start(),
            "pre_request": lambda worker, req: self.request_started(),
            "post_request": lambda worker, req, environ, resp: self.request_finished(),
        }


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_new_config(conf: cfg.ConfigOpts, app_factory: Callable[[], Callable], timeout: float) -> str | None:
    """Build the application from the config files as they are now, in a forked child.

    The child re-reads the files and builds the app exactly as a new worker would; the master's
    own state is untouched whatever happens there. Returns None when it worked, else the reason.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, reported through the pipe
        os.close(read_fd)
        try:
            if not conf.reload_config_files():
                message = "the configuration files could not be read (see the warning above)"
            else:
                app_factory()
                message = ""
        except BaseException as exc:  # noqa: BLE001 - everything is reported to the master
            message = f"{type(exc).__name__}: {exc}" or type(exc).__name__
        os.write(write_fd, (message or "ok").encode()[:4000])
        os._exit(0)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], timeout)
        answer = os.read(read_fd, 4096).decode(errors="replace") if ready else ""
    finally:
        os.close(read_fd)
        _reap(pid)
    if not ready:
        return f"building the application took more than {timeout:.0f} s"
    if answer == "ok":
        return None
    return answer or "the check process died without an answer"


def check_in_fresh_interpreter(command: list[str], conf: cfg.ConfigOpts, timeout: float) -> str | None:
    """Run ``command`` with ``conf``'s configuration files (``cmd.reload_check``): None when
    the application built, else the reason (the last line the command printed)."""
    args = [*command]
    for path in conf.config_file or []:
        args += ["--config-file", path]
    for path in conf.config_dir or []:
        args += ["--config-dir", path]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"building the application took more than {timeout:.0f} s"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode == 0 and lines and lines[-1] == "ok":
        return None
    if lines:
        return lines[-1]
    tail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
    return f"the check process failed: {tail[0]}"


def _reap(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def pick_up_new_site_paths() -> None:
    """Add the directories named by ``.pth`` files created since the master started (a store's
    client bindings wired in by the deployment, e.g. Ceph's rados/rbd), so new workers import
    them without a restart. Only plain directory lines: ``import`` lines already ran at start."""
    added: list[str] = []
    for directory in site.getsitepackages():
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".pth"):
                continue
            try:
                with open(os.path.join(directory, name), encoding="utf-8") as pth:
                    lines = pth.read().splitlines()
            except OSError:
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue
                path = os.path.normpath(os.path.join(directory, line))
                if os.path.isdir(path) and path not in sys.path:
                    sys.path.append(path)
                    added.append(path)
    importlib.invalidate_caches()
    if added:
        LOG.info("Reload: new library paths %s", ", ".join(added))
        reload_optional_imports()


# Packages whose modules import optional client libraries at import time (``try: import rados
# except ImportError: rados = None``): the master imported them before the libraries existed.
OPTIONAL_IMPORT_PACKAGES = ("glance_store", "glance_service")


def reload_optional_imports() -> None:
    """Re-import the modules that hold ``None`` for a library that is importable now, so new
    workers get the store driver with its library instead of the disabled one."""
    for name, module in sorted(sys.modules.items()):
        if module is None or not name.startswith(OPTIONAL_IMPORT_PACKAGES):
            continue
        missing = [
            attr
            for attr, value in list(vars(module).items())
            if value is None and not attr.startswith("_") and attr.isidentifier() and _importable(attr)
        ]
        if not missing:
            continue
        try:
            importlib.reload(module)
            LOG.info("Reload: %s re-imported (now finds %s)", name, ", ".join(missing))
        except Exception:  # noqa: BLE001 - the old module stays; workers report the store
            LOG.exception("Reload: re-importing %s failed", name)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class _Arbiter(Arbiter):
    """gunicorn's arbiter, with a reload that checks the new configuration first, and the
    work to do after a worker exit (``after_worker_exit``) driven from its loop."""

    def reload(self) -> None:
        if not self.app.prepare_reload():
            return
        super().reload()

    def manage_workers(self) -> None:
        super().manage_workers()
        # The slots of workers that exited are free again (common.accept_balance).
        self.app.connection_table.keep_only({getattr(w, "balance_slot", None) for w in self.WORKERS.values()})
        if self.app.after_worker_exit is not None:
            self.app.after_worker_exit.poll()


class _GunicornApplication(BaseApplication):
    def __init__(
        self,
        app_factory: Callable[[], Callable],
        options_factory: Callable[[], dict],
        conf: cfg.ConfigOpts | None = None,
        after_worker_exit: AfterWorkerExit | None = None,
        check_command: list[str] | None = None,
    ):
        self._app_factory = app_factory
        self._options_factory = options_factory
        self.after_worker_exit = after_worker_exit
        self._check_command = check_command
        self._options = options_factory()
        self._conf = conf
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable:
        return self._app_factory()

    def prepare_reload(self) -> bool:
        """Re-read the oslo.config files for the workers about to be forked.

        False (and the old workers stay) when the new files cannot build the application.
        """
        if self._conf is None:
            return True
        pick_up_new_site_paths()
        timeout = self._conf.reload_check_timeout
        if self._conf.workers == 0 and self._check_command:
            # This process serves with threads: a forked child could inherit a held lock.
            problem = check_in_fresh_interpreter(self._check_command, self._conf, timeout)
        else:
            problem = check_new_config(self._conf, self._app_factory, timeout)
        if problem is None and not self._conf.reload_config_files():
            problem = "the configuration files could not be read (see the warning above)"
        if problem is not None:
            LOG.error("Reload refused, the workers keep the previous configuration: %s", problem)
            return False
        self._options = self._options_factory()
        LOG.info(
            "Reloading: new workers start with the configuration re-read from %s", self._conf.config_file
        )
        return True

    def run(self) -> None:
        if self._conf is not None and self._conf.workers == 0:
            solo_server.run(self)  # one process, no master (common.solo_server)
            return
        # Made before the workers are forked: they share it (common.accept_balance).
        self.connection_table = ConnectionTable()
        _Arbiter(self).run()


def gunicorn_options(conf: cfg.ConfigOpts, proc_name: str) -> dict:
    keepalive = conf.http_keepalive_timeout
    return {
        "bind": [bind_address(conf.bind_host, conf.bind_port)],
        # 0: no master, the main process serves (common.solo_server); gunicorn's setting unused.
        "workers": default_workers() if conf.workers is None else max(conf.workers, 1),
        "worker_class": ThreadWorker,  # gthread, its hand-over and heartbeat cut (common.thread_worker)
        "threads": conf.threads_per_worker,
        # gunicorn's C parser (gunicorn_h1c, a pinned dependency): a missing build stops the
        # start with gunicorn's error instead of a silent fall back to the slower Python parser.
        "http_parser": "fast",
        "backlog": conf.backlog,
        "keepalive": keepalive,
        "timeout": conf.client_socket_timeout,
        # Workers replaced by a reload finish what they serve within this time.
        "graceful_timeout": conf.graceful_shutdown_timeout if "graceful_shutdown_timeout" in conf else 30,
        "proc_name": proc_name,
        "preload_app": False,
        # One access line per request, through oslo.log (common.request_log.AccessLogger:
        # gunicorn's access hook); gunicorn's own access log stays off.
        "accesslog": None,
        "logger_class": AccessLogger,
        "errorlog": "-",
        "loglevel": "debug" if conf.debug else "info",
        # Image names and filters can make long query strings.
        "limit_request_line": 16384,
        "limit_request_field_size": 16384,
        # X-Forwarded-Proto and friends are oslo.middleware's HTTPProxyToWSGI's to read, and
        # only with [oslo_middleware] enable_proxy_headers_parsing: gunicorn trusts none.
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        # gunicorn's control socket defaults to one path per user: glance-api and
        # glance-registry on one host would take it from each other. Nothing uses it.
        "control_socket_disable": True,
        **worker_hooks(_trim_interval(conf), _libc_malloc_trim()),
    }


def worker_hooks(trim_interval: float, trim: Callable[[int], int] | None) -> dict:
    """gunicorn's per-worker hooks: the idle memory trimmer's, and once the worker has built
    its app, ``gc.freeze()``: what start-up built (modules, config, the app) lives as long as
    the worker, and the full collections that requests' allocations trigger would walk all of
    it each time (25-28% of the CPU of a 1000-image listing, issue 17)."""
    hooks = IdleMemoryTrimmer(trim_interval, trim).gunicorn_hooks()
    started = hooks.get("post_worker_init")

    def post_worker_init(worker) -> None:
        gc.collect()
        gc.freeze()
        if started is not None:
            started(worker)

    return {**hooks, "post_worker_init": post_worker_init}


def _trim_interval(conf: cfg.ConfigOpts) -> float:
    return conf.memory_trim_interval if "memory_trim_interval" in conf else 0.0


def serve(
    app_factory: Callable[[], Callable],
    conf: cfg.ConfigOpts,
    proc_name: str,
    after_worker_exit: AfterWorkerExit | None = None,
    check_command: list[str] | None = None,
    **overrides,
) -> None:
    """Run the WSGI app built by ``app_factory`` until the process is told to stop.

    SIGHUP reloads: ``conf``'s files are re-read and new workers replace the old ones
    gracefully (see the module's docstring). ``after_worker_exit`` runs its task in a child
    of the master after a worker exited. ``check_command``: the command that builds the app
    from config files given after it, in a fresh interpreter (``cmd.reload_check``): how a
    process serving without a master (``workers = 0``) checks a new configuration.
    """
    register_opts(conf)
    if after_worker_exit is not None:
        overrides["child_exit"] = after_worker_exit.worker_exited

    def options() -> dict:
        # issue 18: the metrics socket and hooks when [metrics] enabled (common.metrics)
        return metrics.gunicorn_options(conf, proc_name, {**gunicorn_options(conf, proc_name), **overrides})

    def factory() -> Callable:
        return metrics.serving(app_factory(), conf, proc_name)

    _GunicornApplication(factory, options, conf, after_worker_exit, check_command).run()
