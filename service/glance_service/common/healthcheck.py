"""``/healthcheck`` of glance-api and glance-registry: oslo.middleware's ``Healthcheck`` with
its backends (``[healthcheck] backends``), loaded by stevedore from the entry point group
``oslo.middleware.healthcheck``:

- ``disable_by_file`` (oslo.middleware's): ``[healthcheck] disable_by_file_path`` exists → 503
  ``DISABLED BY FILE``; an operator or a playbook drains a node from its load balancers with
  ``touch``, while the node still serves what it is sent;
- ours (``glance_service.healthcheck_plugins``): ``glance_registry``, ``glance_database``,
  ``glance_store``: 503 when the process cannot reach what its requests need.

What differs from oslo.middleware's own use (documented in the report of issue 16):

- it answers ``/healthcheck`` in front of the service's pipeline (as upstream Glance's paste
  composite does), unauthenticated: load balancers and systemd carry no token;
- ``[healthcheck] detailed = true`` does not show the details to everyone: only to a caller
  with a valid admin token, or from ``allowed_source_ranges`` when that is set (the only
  callers oslo.middleware answers then); ``?detailed`` asks for the JSON details. Anyone else
  gets the plain answer;
- the plain text answer of a healthy process is one ``OK`` (not one per backend), an unhealthy
  one lists the failing reasons only.
"""

from __future__ import annotations

import contextvars
import dataclasses
import importlib.metadata
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import webob
from oslo_config import cfg
from oslo_middleware import healthcheck as oslo_healthcheck
from oslo_middleware.healthcheck import opts as oslo_opts
from oslo_middleware.healthcheck import pluginbase
from stevedore import extension

from glance_service.common.registrar import registrar

LOG = logging.getLogger(__name__)

GROUP = "healthcheck"
PATH = "/healthcheck"
# The key under which the plugins find the process's resources in their ``conf`` dict (the
# dict oslo.middleware passes to each backend, as paste's local configuration would be).
RESOURCES_KEY = "glance.resources"

healthcheck_opts = [
    cfg.FloatOpt(
        "check_timeout",
        default=2.0,
        min=0.1,
        help="Seconds a registry, database or store check of /healthcheck may take; after it "
        "the process answers 503 (the check goes on in the background, one at a time). "
        "The checks are [healthcheck] backends: glance_registry, glance_database, glance_store "
        "(with oslo.middleware's disable_by_file); when backends is not set, glance-api uses "
        "the three and glance-registry glance_database.",
    ),
    cfg.FloatOpt(
        "check_cache_seconds",
        default=2.0,
        min=0.0,
        help="Seconds the result of a registry or database check is reused by /healthcheck "
        "in each worker process (load balancers poll every few seconds each).",
    ),
    cfg.FloatOpt(
        "store_check_cache_seconds",
        default=10.0,
        min=0.0,
        help="Seconds the result of a default store check (Ceph, S3, Swift, the file store's "
        "directory) is reused by /healthcheck in each worker process.",
    ),
]

# Ours, loaded directly when the installed package's metadata lacks the entry points (an
# editable install older than them): the same classes as in pyproject.toml.
BUILTIN_BACKENDS = {
    "glance_registry": "glance_service.healthcheck_plugins:RegistryCheck",
    "glance_database": "glance_service.healthcheck_plugins:DatabaseCheck",
    "glance_store": "glance_service.healthcheck_plugins:StoreCheck",
}


# ``[healthcheck] backends`` when the configuration does not set it (oslo.middleware's default
# is none): a process without a [healthcheck] section still checks what its requests need.
DEFAULT_BACKENDS = {
    "glance-api": ["glance_registry", "glance_database", "glance_store"],
    "glance-registry": ["glance_database"],
}


register_opts = registrar((GROUP, healthcheck_opts))


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [(GROUP, healthcheck_opts)]


@dataclasses.dataclass
class Resources:
    """What the checks of one worker process use (built once per process, shared)."""

    conf: cfg.ConfigOpts
    service: str  # "glance-api" or "glance-registry"
    data_api: Any = None  # DatabaseAPI or RegistryClient; None: nothing to check
    stores: Any = None  # store.Stores (glance-api only)


# -- a cached check that never blocks longer than its timeout ---------------------------------
class CachedProbe:
    """Runs ``probe`` (returning a ``HealthcheckResult`` or raising) at most once per ``ttl``
    seconds, in a thread of its own, one at a time. A caller waits at most ``timeout`` for a
    fresh result; a probe still running then is reported unavailable (and that answer is
    reused until the probe ends or ``ttl`` passes), so a hung Ceph or registry never holds
    a health check, nor piles up threads."""

    def __init__(
        self,
        name: str,
        probe: Callable[[], pluginbase.HealthcheckResult],
        *,
        reason: str,
        ttl: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.probe = probe
        self.reason = reason
        self.ttl = ttl
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._result: pluginbase.HealthcheckResult | None = None
        self._expires = 0.0
        self._done: threading.Event | None = None  # set while a probe runs

    def result(self) -> pluginbase.HealthcheckResult:
        with self._lock:
            if self._result is not None and self.clock() < self._expires:
                return self._result
            done = self._done
            if done is None:
                done = self._done = threading.Event()
                threading.Thread(
                    target=self._run, args=(done,), name=f"healthcheck-{self.name}", daemon=True
                ).start()
        if done.wait(self.timeout):
            with self._lock:
                if self._result is not None:
                    return self._result
        timed_out = pluginbase.HealthcheckResult(
            available=False, reason=self.reason, details=f"{self.name}: no answer within {self.timeout:g} s"
        )
        with self._lock:
            if self._done is done:  # still running: answer the same until it ends
                self._result, self._expires = timed_out, self.clock() + self.ttl
        LOG.warning("healthcheck: %s did not answer within %g s", self.name, self.timeout)
        return timed_out

    def _run(self, done: threading.Event) -> None:
        try:
            result = self.probe()
        except Exception as exc:  # a check never raises to the caller
            result = pluginbase.HealthcheckResult(
                available=False, reason=self.reason, details=f"{self.name}: {type(exc).__name__}: {exc}"
            )
        if not result.available:
            LOG.warning("healthcheck: %s: %s", result.reason, result.details)
        with self._lock:
            self._result, self._expires = result, self.clock() + self.ttl
            self._done = None
        done.set()


# -- oslo.middleware's Healthcheck, details per request -----------------------------------------
_SHOW_DETAILS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "glance_healthcheck_details", default=False
)


class GlanceHealthcheck(oslo_healthcheck.Healthcheck):
    """oslo.middleware's ``Healthcheck`` whose details follow the request (``_SHOW_DETAILS``),
    whose backends receive the process's ``Resources`` and whose plain answer is one line."""

    def __init__(self, application: Callable | None, conf: cfg.ConfigOpts, resources: Resources):
        self._resources = resources
        register_opts(conf)
        super().__init__(application, conf)
        self._load_missing_builtins()

    # oslo.middleware lists greenlet stacks by scanning gc.get_objects() with isinstance(),
    # which raises ReferenceError on a dead weakref proxy in the heap (seen in the full test
    # suite: the detailed answer was a 500). This service runs no greenlets (gunicorn gthread).
    @staticmethod
    def _get_greenstacks() -> list:
        return []

    # ConfigurableMiddleware sets ``conf`` to {} for a ConfigOpts; the backends receive it as
    # their ``conf`` (paste's local configuration): the resources travel in it.
    @property
    def conf(self) -> dict:
        return self._conf_dict

    @conf.setter
    def conf(self, value: dict) -> None:
        self._conf_dict = {**value, RESOURCES_KEY: self._resources}

    # oslo.middleware reads ``_show_details`` for its JSON and HTML answers.
    @property
    def _show_details(self) -> bool:
        return self._details_enabled and _SHOW_DETAILS.get()

    @_show_details.setter
    def _show_details(self, value: bool) -> None:
        self._details_enabled = bool(value)

    @property
    def details_enabled(self) -> bool:
        return self._details_enabled

    def _load_missing_builtins(self) -> None:
        """Our backends named in ``backends`` that stevedore did not find (package metadata
        without our entry points) are loaded directly; unknown names are logged."""
        names = list(self._conf_get("backends"))
        loaded = {ext.name: ext for ext in self._backends}
        missing = [n for n in names if n not in loaded]
        if not missing:
            return
        exts = []
        for name in names:
            if name in loaded:
                exts.append(loaded[name])
            elif name in BUILTIN_BACKENDS:
                ep = importlib.metadata.EntryPoint(name, BUILTIN_BACKENDS[name], self.NAMESPACE)
                plugin = ep.load()
                exts.append(extension.Extension(name, ep, plugin, plugin(self.oslo_conf, self.conf)))
            else:
                LOG.error("[healthcheck] backends: no backend named %r (ignored)", name)
        self._backends = extension.ExtensionManager.make_test_instance(exts, namespace=self.NAMESPACE)

    def _make_text_response(self, results, healthy):
        if healthy:
            return "OK", "text/plain"
        failing = [r.reason for r in results if not r.available]
        return "\n".join(dict.fromkeys(failing)), "text/plain"


class HealthcheckFilter:
    """``/healthcheck`` in front of ``app`` (before authentication); every other path goes
    to ``app``. ``identify``: a WSGI app behind the service's authentication that puts the
    caller's context into the environ (built on first use: only detailed requests need it)."""

    def __init__(
        self,
        app: Callable,
        conf: cfg.ConfigOpts,
        resources: Resources,
        identify: Callable[[], Callable] | None = None,
    ):
        self.app = app
        self.check = GlanceHealthcheck(app, conf, resources)
        self._identify_factory = identify
        self._identify: Callable | None = None
        self._identify_lock = threading.Lock()
        self._source_ranges = bool(conf.healthcheck.allowed_source_ranges)

    def __call__(self, environ: dict, start_response: Callable):
        if environ.get("PATH_INFO") != PATH:
            return self.app(environ, start_response)
        details = False
        if self.check.details_enabled and environ.get("REQUEST_METHOD") == "GET":
            details = self._wants_details(environ) and self._may_see_details(environ)
        token = _SHOW_DETAILS.set(details)
        try:
            return self.check(environ, start_response)
        finally:
            _SHOW_DETAILS.reset(token)

    @staticmethod
    def _wants_details(environ: dict) -> bool:
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if "detailed" in query:
            accept = environ.get("HTTP_ACCEPT", "")
            if "text/html" not in accept:
                environ["HTTP_ACCEPT"] = "application/json"
            return True
        offers = webob.Request(environ).accept.acceptable_offers(
            ("text/plain", "text/html", "application/json")
        )
        return bool(offers) and offers[0][0] != "text/plain"

    def _may_see_details(self, environ: dict) -> bool:
        # With allowed_source_ranges set, oslo.middleware answers only callers from them.
        if self._source_ranges:
            return True
        if self._identify_factory is None:
            return False
        try:
            ctx = self._caller(environ)
        except Exception:
            LOG.exception("healthcheck: identifying the caller failed")
            return False
        return bool(ctx is not None and ctx.is_admin)

    def _caller(self, environ: dict):
        from glance_service.common import auth

        if self._identify is None:
            with self._identify_lock:
                if self._identify is None:
                    self._identify = self._identify_factory()
        probe = dict(environ)
        probe["REQUEST_METHOD"] = "GET"
        probe["CONTENT_LENGTH"] = "0"
        body = self._identify(probe, lambda status, headers, exc_info=None: None)
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return probe.get(auth.CONTEXT_KEY)


def _identified(environ: dict, start_response: Callable):
    """The inner app of ``identify``: the context is in the environ already."""
    start_response("204 No Content", [])
    return []


def build(app: Callable, conf: cfg.ConfigOpts, resources: Resources) -> HealthcheckFilter:
    """``app`` behind ``/healthcheck``; the caller of a detailed request is identified by the
    service's own authentication (keystone tokens, or trusted headers in development mode)."""
    from glance_service.common import auth

    conf.register_opts(oslo_opts.HEALTHCHECK_OPTS, group=GROUP)
    conf.set_default("backends", DEFAULT_BACKENDS.get(resources.service, []), group=GROUP)
    return HealthcheckFilter(
        app, conf, resources, identify=lambda: auth.with_auth(_identified, conf, resources.service)
    )
