"""Interoperable import and location import: the work itself, run off the request path.

The HTTP side (``api/imports.py``) validates a request, creates the task, takes the image's
``os_glance_import_task`` lock, moves the image to ``importing`` (not for copy-image) and
hands the task id to this module's worker pool. A worker then:

* ``web-download``: fetches the URL (every hop checked by ``[import_filtering_opts]``) into
  the staging store; ``glance-direct`` finds the data staged already; ``copy-image`` reads an
  existing location;
* writes the data to each target store in turn (hashed as it streams, like an upload),
  recording a location ``{"store": id}`` per store and keeping ``os_glance_importing_to_stores``
  and ``os_glance_failed_import`` current; copies must hash exactly like the image;
* activates the image with its size and hashes, or on failure removes what it wrote and
  returns the image to ``queued`` (copy-image: the image stays active, only failed copies go);
* always removes the staged data, releases the lock and closes the task.

The pool lives in each API process; a process that dies leaves its tasks ``pending`` or
``processing``: ``recover_interrupted_imports`` (glance-api start-up) fails them and puts
their images back in a consistent state, with no data left that no location records.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import os
import socket
import threading
import time
import urllib.parse

import requests
from oslo_config import cfg
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common.masking import mask_secrets
from glance_service.context import RequestContext
from glance_service.images import format_inspector, states, url_filter

LOG = logging.getLogger(__name__)

IMPORT_TASK = "os_glance_import_task"
IMPORTING = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"
# The process that stages or imports the image's data, "<hostname>:<pid>:<start time>", for
# the recovery of work a dead process left (hidden by the views).
WORKER = "os_glance_import_worker"
# Upstream's: the URL of the API node holding the image's staged data (hidden by the views;
# api/stage_proxy.py). Releases before session 5 kept the process marker under this name.
STAGE_HOST = "os_glance_stage_host"
TASK_TYPES = ("api_image_import", "location_import", "import")
BLOCK = 1024 * 1024
MAX_REDIRECTS = 5

# Upstream's declarations (``bounds``: a list is written ``[a, b]``, as Glance documents it).
filtering_opts = [
    cfg.ListOpt(
        "allowed_schemes",
        bounds=True,
        default=["http", "https"],
        help="web-download: URL schemes allowed, e.g. [http, https].",
    ),
    cfg.ListOpt(
        "disallowed_schemes",
        bounds=True,
        default=[],
        help="web-download: URL schemes refused (unused if allowed_schemes).",
    ),
    cfg.ListOpt(
        "allowed_hosts",
        item_type=cfg.types.HostAddress(),
        bounds=True,
        default=[],
        help="web-download: the only hosts allowed, e.g. [127.0.0.1, images.example.org] (empty: any).",
    ),
    cfg.ListOpt(
        "disallowed_hosts",
        item_type=cfg.types.HostAddress(),
        bounds=True,
        default=[],
        help="web-download: hosts refused (unused if allowed_hosts).",
    ),
    cfg.ListOpt(
        "allowed_ports",
        item_type=cfg.types.Integer(min=1, max=65535),
        bounds=True,
        default=[80, 443],
        help="web-download: the only ports allowed, e.g. [80, 443] (empty: any).",
    ),
    cfg.ListOpt(
        "disallowed_ports",
        item_type=cfg.types.Integer(min=1, max=65535),
        bounds=True,
        default=[],
        help="web-download: ports refused (unused if allowed_ports).",
    ),
]
worker_opts = [
    cfg.IntOpt(
        "max_workers",
        default=10,
        min=1,
        help="Imports (and location imports) one glance-api worker process runs at the same time.",
    ),
]
# [task] as in Glance; [DEFAULT] task_time_to_live is the old name Glance still reads.
task_group_opts = [
    cfg.IntOpt(
        "task_time_to_live",
        default=48,
        deprecated_opts=[cfg.DeprecatedOpt("task_time_to_live", group="DEFAULT")],
        help="Hours a finished task is kept (its expires_at).",
    ),
]
task_opts = [
    cfg.BoolOpt(
        "do_secure_hash",
        default=True,
        help="Location import (POST /v2/images/{id}/locations) reads the data to compute the "
        "image's checksum and os_hash_value.",
    ),
    cfg.IntOpt(
        "import_stale_timeout",
        default=3600,
        min=60,
        help="Seconds after which a task run by glance-api on another host, which has not "
        "refreshed it since, is taken as interrupted at start-up. Running tasks refresh "
        "themselves every minute.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(filtering_opts, group="import_filtering_opts")
    conf.register_opts(worker_opts, group="taskflow_executor")
    conf.register_opts(task_opts)
    conf.register_opts(task_group_opts, group="task")


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    return [
        (None, task_opts),
        ("task", task_group_opts),
        ("import_filtering_opts", filtering_opts),
        ("taskflow_executor", worker_opts),
    ]


register_opts(cfg.CONF)


# -- URL filtering (Glance's validate_import_uri) ---------------------------------------------
class ImportOptionsError(ValueError):
    """A ``[import_filtering_opts]`` value oslo.config cannot read."""


def check_options(conf: cfg.ConfigOpts) -> None:
    """Reads every filtering list once, so that a value written without Glance's brackets
    stops the service at start-up (and a reload's trial build) with the fix, instead of failing
    each web-download with a 500."""
    conf.register_opts(filtering_opts, group="import_filtering_opts")
    for opt in filtering_opts:
        try:
            getattr(conf.import_filtering_opts, opt.dest)
        except cfg.ConfigFileValueError as exc:
            raise ImportOptionsError(
                f"[import_filtering_opts] {opt.dest} is not a valid list ({exc}): write it as "
                f"Glance does, in brackets, e.g. {opt.dest} = [{_EXAMPLES.get(opt.dest, '')}]"
            ) from exc


_EXAMPLES = {
    "allowed_schemes": "http, https",
    "disallowed_schemes": "ftp",
    "allowed_hosts": "127.0.0.1, images.example.org",
    "disallowed_hosts": "169.254.169.254",
    "allowed_ports": "80, 443",
    "disallowed_ports": "8080",
}


def uri_allowed(conf: cfg.ConfigOpts, uri: object) -> bool:
    """Whether the service may fetch ``uri`` (``images.url_filter``: Glance's rules)."""
    return url_filter.uri_allowed(conf.import_filtering_opts, uri)


# -- process identity --------------------------------------------------------------------------
def process_marker() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X", "x") else fields[19]


def worker_marker(props: dict) -> str | None:
    """The process marker of the image's staging or import (also as older releases kept it)."""
    marker = props.get(WORKER)
    if marker is None and not is_url(props.get(STAGE_HOST)):
        marker = props.get(STAGE_HOST)
    return marker


def is_url(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def self_url(conf: cfg.ConfigOpts) -> str | None:
    """This API node's URL for the staged-data hand-off (upstream's ``self_url``):
    ``worker_self_reference_url``, else ``public_endpoint``; None when neither is set."""
    for name in ("worker_self_reference_url", "public_endpoint"):
        try:
            value = getattr(conf, name)
        except (cfg.NoSuchOptError, AttributeError):
            continue
        if value:
            return value
    return None


def same_url(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and a.rstrip("/") == b.rstrip("/")


def staged_elsewhere(conf: cfg.ConfigOpts, props: dict) -> str | None:
    """The URL of the other API node that holds the image's staged data, else None."""
    host = props.get(STAGE_HOST)
    if not is_url(host) or same_url(host, self_url(conf)):
        return None
    return host


def marker_alive(marker: str | None) -> bool | None:
    """True/False for a process of this host; None when the marker names another host."""
    host, _, rest = (marker or "").partition(":")
    if host != socket.gethostname():
        return None
    pid, _, start = rest.partition(":")
    return pid.isdigit() and _start_time(int(pid)) == start


# -- the pool -----------------------------------------------------------------------------------
_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_POOL_PID: int | None = None
_POOL_LOCK = threading.Lock()


def submit(svc, task_id: str) -> concurrent.futures.Future:
    """Run the task in this process's pool (created on first use, after gunicorn's fork)."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid():
            _POOL = concurrent.futures.ThreadPoolExecutor(
                max_workers=svc.conf.taskflow_executor.max_workers, thread_name_prefix="import"
            )
            _POOL_PID = os.getpid()
        return _POOL.submit(run_task, svc, task_id)


def run_task(svc, task_id: str) -> None:
    ctx = RequestContext.admin()
    try:
        task = svc.data.task_update(ctx, task_id, {"status": "processing"}, from_status="pending")
    except (exceptions.Conflict, exceptions.TaskNotFound):
        return  # taken over (recovery) or gone
    ctx.request_id = task.get("request_id") or ctx.request_id
    try:
        if task["type"] == "location_import":
            _LocationImport(svc, ctx, task).run()
        else:
            _Import(svc, ctx, task).run()
    except Exception:
        LOG.exception("Task %s failed unexpectedly", task_id)


def finish_task(svc, ctx: RequestContext, task_id: str, ok: bool, message: str = "", result=None) -> None:
    expires = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(
        hours=svc.conf.task.task_time_to_live
    )
    values = {
        "status": "success" if ok else "failure",
        "message": mask_secrets(message),  # a web-download URL may carry credentials
        "expires_at": expires.isoformat(),
    }
    if result is not None:
        values["result"] = result
    try:
        svc.data.task_update(ctx, task_id, values)
    except exceptions.GlanceServiceError as exc:
        LOG.error("Could not close task %s: %s", task_id, exc)


def release_lock(svc, ctx: RequestContext, image_id: str, task_id: str) -> None:
    try:
        svc.data.image_delete_property_atomic(ctx, image_id, IMPORT_TASK, task_id)
    except (exceptions.NotFound, exceptions.ImageNotFound):
        pass


class _Reader:
    """``read(n)`` over a store's DataSource (a file or an iterator of chunks), refreshing the
    task now and then so that recovery on another host can tell it is alive."""

    def __init__(self, source, beat):
        self._source = source
        self._iter = None if source.fileobj is not None else iter(source)
        self._rest = b""
        self._beat = beat

    def read(self, n: int = BLOCK) -> bytes:
        self._beat()
        if self._iter is None:
            return self._source.fileobj.read(n)
        while not self._rest:
            self._rest = next(self._iter, b"")
            if not self._rest:
                return b""
        out, self._rest = self._rest[:n], self._rest[n:]
        return out


def _heartbeat(svc, ctx: RequestContext, task_id: str):
    state = {"next": time.monotonic() + 60}

    def beat() -> None:
        if time.monotonic() >= state["next"]:
            state["next"] = time.monotonic() + 60
            svc.data.task_update(ctx, task_id, {"status": "processing"}, from_status="processing")

    return beat


class _Import:
    """One ``api_image_import`` (or legacy ``import``) task."""

    def __init__(self, svc, ctx: RequestContext, task: dict):
        self.svc, self.ctx, self.task = svc, ctx, task
        self.task_id = task["id"]
        info = task.get("input") or {}
        self.image_id = task.get("image_id") or info.get("image_id")
        req = info.get("import_req") or {}
        self.method = (req.get("method") or {}).get("name") or "web-download"
        self.uri = (req.get("method") or {}).get("uri") or info.get("import_from")
        self.targets: list[str | None] = list(info.get("backend") or [None])
        self.must_succeed = bool(req.get("all_stores_must_succeed", True))
        self.copy = self.method == "copy-image"
        self.added: list[dict] = []  # locations this task recorded
        self.failed: list[str] = []
        self.beat = _heartbeat(svc, ctx, self.task_id)

    def run(self) -> None:
        try:
            image = self.svc.data.image_get(self.ctx, self.image_id)
            virtual_size = None
            if self.method == "web-download":
                virtual_size = self._download(image)
            hashes = self._write_all(image)
            if virtual_size is not None:
                hashes["virtual_size"] = virtual_size
            if not self.copy:
                self.svc.data.image_update(
                    self.ctx, self.image_id, {"status": states.ACTIVE, **hashes}, from_state=states.IMPORTING
                )
        except Exception as exc:
            message = exc.message if isinstance(exc, exceptions.GlanceServiceError) else str(exc)
            LOG.warning("Import task %s of image %s failed: %s", self.task_id, self.image_id, message)
            self._revert()
            finish_task(self.svc, self.ctx, self.task_id, False, message or type(exc).__name__)
        else:
            message = f"Failed to import to: {', '.join(self.failed)}" if self.failed else ""
            finish_task(self.svc, self.ctx, self.task_id, True, message, {"image_id": self.image_id})
        finally:
            if not self.copy:
                _quietly(self.svc.stores.unstage, self.image_id)
            release_lock(self.svc, self.ctx, self.image_id, self.task_id)

    # -- steps ------------------------------------------------------------------------------
    def _download(self, image: dict) -> int | None:
        """Fetch the URL into the staging store, checking every redirect hop and inspecting the
        data against the declared disk format as it streams; returns the virtual size."""
        url = self.uri
        session = requests.Session()
        try:
            for _ in range(MAX_REDIRECTS + 1):
                if not uri_allowed(self.svc.conf, url):
                    raise exceptions.BadRequest(f"The URL {url} does not pass the import filters.")
                resp = session.get(url, stream=True, allow_redirects=False, timeout=60)
                if resp.is_redirect:
                    url = urllib.parse.urljoin(url, resp.headers["Location"])
                    resp.close()
                    continue
                if resp.status_code != 200:
                    raise exceptions.BadRequest(f"Downloading {url} failed: HTTP {resp.status_code}.")
                with resp:
                    self.svc.stores.unstage(self.image_id)
                    size = resp.headers.get("Content-Length")
                    reader = format_inspector.InspectingReader(
                        _RawReader(resp.raw, self.beat), format_inspector.for_image(self.svc.conf, image)
                    )
                    self.svc.stores.stage(
                        self.image_id,
                        reader,
                        expected_size=int(size) if size and size.isdigit() else None,
                        size_cap=self.svc.conf.image_size_cap,
                    )
                return reader.finish().virtual_size
            raise exceptions.BadRequest(f"Too many redirects from {self.uri}.")
        except requests.RequestException as exc:
            raise exceptions.BadRequest(f"Downloading {url} failed: {exc}") from exc
        finally:
            session.close()

    def _source(self, image: dict):
        if not self.copy:
            url = self.svc.stores.staged_url(self.image_id)
            if url is None:
                raise exceptions.NotFound(f"No staged data for image {self.image_id}.")
            return self.svc.stores.open(url)
        for loc in image.get("locations") or []:
            if loc.get("status", "active") != "active":
                continue
            try:
                return self.svc.stores.open(loc["url"], backend=(loc.get("metadata") or {}).get("store"))
            except exceptions.GlanceServiceError as exc:
                LOG.warning("Copy of image %s: location %s unreadable: %s", self.image_id, loc["url"], exc)
        raise exceptions.NotFound(f"No readable data for image {self.image_id}.")

    def _write_all(self, image: dict) -> dict:
        """Write to every target; the image's values to record (non-copy)."""
        reference = None
        if self.copy:
            reference = (image.get("size"), image.get("os_hash_value"))
        pending = [t for t in self.targets]
        hashes: dict = {}
        for target in self.targets:
            try:
                stored = self._write_one(image, target)
                if reference is not None and (stored.size, stored.hash_value) != reference:
                    _quietly(self.svc.stores.delete, stored.url, target)
                    raise exceptions.Conflict(f"The copy in store {target} does not match the image's hash.")
                reference = (stored.size, stored.hash_value)
                hashes = {
                    "size": stored.size,
                    "checksum": stored.checksum,
                    "os_hash_algo": stored.hash_algo,
                    "os_hash_value": stored.hash_value,
                }
                self.added.append(
                    self.svc.data.image_location_add(self.ctx, self.image_id, stored.url, stored.metadata)
                )
            except Exception as exc:
                if target is None or self.must_succeed:
                    raise
                LOG.warning("Import of image %s to store %s failed: %s", self.image_id, target, exc)
                self.failed.append(target)
            finally:
                pending.remove(target)
                self._progress(pending)
        if not self.added:
            raise exceptions.GlanceServiceError("The image could not be imported to any store.")
        return hashes

    def _write_one(self, image: dict, target: str | None):
        source = self._source(image)
        try:
            try:
                return self._add(source, target)
            except exceptions.Duplicate:
                # Unrecorded data left by a task that died: no location names it, replace it.
                if any(
                    (loc.get("metadata") or {}).get("store") == target for loc in image.get("locations") or []
                ):
                    raise
                self.svc.stores.discard_from(self.image_id, target) if target else self.svc.stores.discard(
                    self.image_id
                )
                source.close()
                source = self._source(image)
                return self._add(source, target)
        finally:
            source.close()

    def _add(self, source, target: str | None):
        return self.svc.stores.add(
            self.image_id,
            _Reader(source, self.beat),
            expected_size=source.size,
            size_cap=self.svc.conf.image_size_cap,
            store=target,
        )

    def _progress(self, pending: list) -> None:
        if not self.svc.stores.enabled:
            return
        props = {IMPORTING: ",".join(t for t in pending if t), FAILED: ",".join(self.failed)}
        try:
            self.svc.data.image_update(self.ctx, self.image_id, {"properties": props})
        except exceptions.ImageNotFound:
            raise
        except exceptions.GlanceServiceError as exc:
            LOG.warning("Could not record import progress of image %s: %s", self.image_id, exc)

    def _revert(self) -> None:
        revert_import(self.svc, self.ctx, self.image_id, self.added, self.targets, copy=self.copy)


def revert_import(
    svc, ctx: RequestContext, image_id: str, added: list[dict], targets: list, *, copy: bool
) -> None:
    """Undo a failed import: remove the locations it recorded and their data, and any data it
    wrote without recording; a non-copy import returns the image to ``queued``."""
    if not copy or added:
        for loc in added:
            _quietly(svc.data.image_location_delete, ctx, image_id, loc["id"])
            _quietly(svc.stores.delete, loc["url"], (loc.get("metadata") or {}).get("store"))
    try:
        image = svc.data.image_get(ctx, image_id)
    except exceptions.ImageNotFound:
        image = None
    if image is not None and not copy:
        # Everything the image holds came from this import (it had no data before).
        for loc in image.get("locations") or []:
            _quietly(svc.data.image_location_delete, ctx, image_id, loc["id"])
            _quietly(svc.stores.delete, loc["url"], (loc.get("metadata") or {}).get("store"))
    recorded = {(loc.get("metadata") or {}).get("store") for loc in (image or {}).get("locations") or []}
    for target in targets:
        if copy and target in recorded:
            continue  # a finished copy (recorded after its hash was checked) stays
        if target is None:
            _quietly(svc.stores.discard, image_id)
        else:
            _quietly(svc.stores.discard_from, image_id, target)
    if image is None:
        return
    props = {}
    if svc.stores.enabled:
        done = {(loc.get("metadata") or {}).get("store") for loc in added}
        props = {IMPORTING: "", FAILED: ",".join(t for t in targets if t and t not in done)}
    values: dict = {"properties": props} if props else {}
    if not copy and image["status"] in (states.IMPORTING, states.UPLOADING):
        values.update(states.reset_on_queued({"status": states.QUEUED}))
        values.update(checksum=None, os_hash_algo=None, os_hash_value=None)
        _quietly(svc.data.image_update, ctx, image_id, values, from_state=image["status"])
    elif values:
        _quietly(svc.data.image_update, ctx, image_id, values)


class _RawReader:
    def __init__(self, raw, beat):
        self._raw = raw
        self._beat = beat

    def read(self, n: int = BLOCK) -> bytes:
        self._beat()
        try:
            return self._raw.read(n)
        except Exception as exc:
            raise exceptions.BadRequest(f"The download was interrupted: {exc}") from exc


def _quietly(fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - cleanup: the first error is what counts
        LOG.warning("Cleanup step %s failed: %s", getattr(fn, "__name__", fn), exc)


# -- location import (POST /v2/images/{id}/locations) ---------------------------------------
class _LocationImport:
    def __init__(self, svc, ctx: RequestContext, task: dict):
        self.svc, self.ctx, self.task = svc, ctx, task
        info = task.get("input") or {}
        self.task_id = task["id"]
        self.image_id = task["image_id"]
        self.url = info.get("loc_url")
        self.validation = info.get("validation_data") or {}
        self.beat = _heartbeat(svc, ctx, self.task_id)

    def run(self) -> None:
        location = None
        try:
            metadata = {}
            store = self.svc.stores.store_for_url(self.url) if self.svc.stores.enabled else None
            if store:
                metadata["store"] = store
            # As Glance's location_import flow: hashed with the caller's algorithm when
            # validation_data names one (then recorded as os_hash_algo), else hashing_algorithm;
            # without do_secure_hash the caller's values are recorded unchecked.
            expected = self.validation.get("os_hash_value")
            algo = self.validation.get("os_hash_algo") if expected else None
            # Glance's flow records the location first and, when hashing or the check fails,
            # takes it back off except for http(s) URLs (the http store cannot delete a
            # location, Launchpad bug 2076648): the queued image keeps it, and tempest checks that.
            location = self.svc.data.image_location_add(self.ctx, self.image_id, self.url, metadata)
            if self.svc.conf.do_secure_hash:
                values = self._hash(store, algo or self.svc.stores.hash_algo)
                if expected and values["os_hash_value"] != expected:
                    raise exceptions.Conflict(
                        f"The data at the location does not match its validation_data: {algo} "
                        f"{values['os_hash_value']}, expected {expected}."
                    )
            else:
                values = {"os_hash_algo": algo, "os_hash_value": expected} if expected else {}
            self.svc.data.image_update(
                self.ctx, self.image_id, {"status": states.ACTIVE, **values}, from_state=states.IMPORTING
            )
        except Exception as exc:
            message = exc.message if isinstance(exc, exceptions.GlanceServiceError) else str(exc)
            LOG.warning("Location import of image %s failed: %s", self.image_id, message)
            if location is not None and not self.url.lower().startswith("http"):
                _quietly(self.svc.data.image_location_delete, self.ctx, self.image_id, location["id"])
            _quietly(
                self.svc.data.image_update,
                self.ctx,
                self.image_id,
                states.reset_on_queued({"status": states.QUEUED}),
                from_state=states.IMPORTING,
            )
            finish_task(self.svc, self.ctx, self.task_id, False, message or type(exc).__name__)
        else:
            finish_task(self.svc, self.ctx, self.task_id, True, "", {"image_id": self.image_id})
        finally:
            release_lock(self.svc, self.ctx, self.image_id, self.task_id)

    def _hash(self, store: str | None, algo: str) -> dict:
        import hashlib

        md5, main = hashlib.md5(usedforsecurity=False), hashlib.new(algo)
        size = 0
        source = self.svc.stores.open(self.url, backend=store)
        try:
            for chunk in source:
                self.beat()
                size += len(chunk)
                md5.update(chunk)
                main.update(chunk)
        finally:
            source.close()
        return {
            "size": size,
            "checksum": md5.hexdigest(),
            "os_hash_algo": algo,
            "os_hash_value": main.hexdigest(),
        }


# -- start-up recovery ---------------------------------------------------------------------------
def recover_interrupted_imports(svc) -> int:
    """Fail the tasks a dead process left ``pending``/``processing`` and return their images
    to a consistent state; return stagings cut by a crash to ``queued``. Called by glance-api
    at start-up (after the upload recovery, which removed unheld partial files). Returns how
    many tasks were taken over."""
    ctx = RequestContext.admin()
    stale = datetime.timedelta(seconds=svc.conf.import_stale_timeout)
    stale_before = (datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - stale).isoformat()
    recovered = 0
    for status in ("pending", "processing"):
        for task in svc.data.task_get_all(ctx, filters={"status": status}):
            if task["type"] not in TASK_TYPES or not task.get("image_id"):
                continue
            if _task_alive(svc, ctx, task, stale_before):
                continue
            if _take_over(svc, ctx, task):
                recovered += 1
    _recover_stagings(svc, ctx)
    return recovered


def _task_alive(svc, ctx: RequestContext, task: dict, stale_before: str) -> bool:
    try:
        image = svc.data.image_get(ctx, task["image_id"])
    except exceptions.ImageNotFound:
        return False
    alive = marker_alive(worker_marker(image.get("properties") or {}))
    if alive is None:
        return (task.get("updated_at") or "") >= stale_before
    return alive


def _take_over(svc, ctx: RequestContext, task: dict) -> bool:
    task_id, image_id = task["id"], task["image_id"]
    try:
        svc.data.task_update(ctx, task_id, {"status": "processing"}, from_status=task["status"])
    except (exceptions.Conflict, exceptions.TaskNotFound):
        return False  # finished meanwhile
    info = task.get("input") or {}
    method = ((info.get("import_req") or {}).get("method") or {}).get("name")
    copy = method == "copy-image"
    if task["type"] == "location_import":
        try:
            image = svc.data.image_get(ctx, image_id)
            for loc in image.get("locations") or []:
                if loc["url"] == info.get("loc_url") and image["status"] == states.IMPORTING:
                    _quietly(svc.data.image_location_delete, ctx, image_id, loc["id"])
            _quietly(
                svc.data.image_update,
                ctx,
                image_id,
                states.reset_on_queued({"status": states.QUEUED}),
                from_state=states.IMPORTING,
            )
        except exceptions.ImageNotFound:
            pass
    else:
        revert_import(svc, ctx, image_id, [], list(info.get("backend") or [None]), copy=copy)
        if not copy:
            _quietly(svc.stores.unstage, image_id)
    release_lock(svc, ctx, image_id, task_id)
    finish_task(
        svc, ctx, task_id, False, "The import was interrupted: the glance-api process running it stopped."
    )
    LOG.warning(
        "Task %s of image %s was interrupted by a stopped process: failed and undone", task_id, image_id
    )
    return True


def _recover_stagings(svc, ctx: RequestContext) -> None:
    """An image ``uploading`` with no staged data, no live stager and no import: its stage
    request died mid-way. Back to ``queued``."""
    stale = datetime.timedelta(seconds=svc.conf.import_stale_timeout)
    stale_before = (datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - stale).isoformat()
    for image in svc.data.image_get_by_status(ctx, states.UPLOADING):
        props = image.get("properties") or {}
        if props.get(IMPORT_TASK) or svc.stores.staged_url(image["id"]):
            continue
        if staged_elsewhere(svc.conf, props):
            continue  # staged on another API node: that node's own start-up recovers it
        alive = marker_alive(worker_marker(props))
        if alive or (alive is None and (image.get("updated_at") or "") >= stale_before):
            continue
        _quietly(svc.stores.unstage, image["id"])
        _quietly(
            svc.data.image_update,
            ctx,
            image["id"],
            states.reset_on_queued({"status": states.QUEUED}),
            from_state=states.UPLOADING,
        )
        LOG.warning(
            "Image %s was left 'uploading' by an interrupted stage: returned to 'queued'", image["id"]
        )
