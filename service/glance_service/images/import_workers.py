"""Interoperable import: the work itself, run off the request path in this module's pool.

The HTTP side (``api/imports.py``) validates a request, creates the task, takes the image's
``os_glance_import_task`` lock, moves the image to ``importing`` (not for copy-image) and
hands the task id to this module's worker pool. A worker then:

* ``web-download``: fetches the URL (every hop checked by ``[import_filtering_opts]``) into
  the staging store; ``glance-direct`` finds the data staged already; ``copy-image`` reads an
  existing location;
* runs the import plugins of ``[image_import_opts] image_import_plugins`` on the staged data
  (``images/import_plugins/``; not for copy-image, nor for the legacy ``import`` task, as
  upstream); their image values are applied with the activation;
* writes the data to each target store in turn (hashed as it streams, like an upload),
  recording a location ``{"store": id}`` per store and keeping ``os_glance_importing_to_stores``
  and ``os_glance_failed_import`` current; copies must hash exactly like the image;
* activates the image with its size and hashes, or on failure removes what it wrote and
  returns the image to ``queued`` (copy-image: the image stays active, only failed copies go);
* always removes the staged data, releases the lock and closes the task.

The pool lives in each API process and also runs location import (``images/location_import.py``).
A process that dies leaves its tasks ``pending`` or ``processing``: ``images/import_recovery.py``
(glance-api start-up) fails them and puts their images back in a consistent state. What every
task shares (the image properties, the lock, closing the task) is ``images/import_tasks.py``;
the options are ``images/import_options.py``.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import urllib.parse

import requests
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common import metrics, notifications
from glance_service.context import RequestContext
from glance_service.images import format_inspector, import_plugins, states
from glance_service.images.glance_download import Credentials, GlanceDownload, open_url
from glance_service.images.import_options import uri_allowed
from glance_service.images.import_tasks import (
    FAILED,
    IMPORTING,
    finish_task,
    heartbeat,
    quietly,
    release_lock,
)
from glance_service.images.location_import import LocationImport

LOG = logging.getLogger(__name__)

BLOCK = 1024 * 1024
MAX_REDIRECTS = 5


# -- the pool -----------------------------------------------------------------------------------
_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_POOL_PID: int | None = None
_POOL_LOCK = threading.Lock()
# glance-download: the caller's token and catalog per task, in memory only (never recorded).
_CREDENTIALS: dict[str, Credentials] = {}


def submit(
    svc, task_id: str, roles: list[str] | None = None, credentials: Credentials | None = None
) -> concurrent.futures.Future:
    """Run the task in this process's pool (created on first use, after gunicorn's fork).
    ``roles``: the importing user's (the import plugins read them; a task is never resumed
    by another process, so they need not be stored). ``credentials``: glance-download's."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if credentials is not None:
            _CREDENTIALS[task_id] = credentials
        if _POOL is None or _POOL_PID != os.getpid():
            _POOL = concurrent.futures.ThreadPoolExecutor(
                max_workers=svc.conf.taskflow_executor.max_workers, thread_name_prefix="import"
            )
            _POOL_PID = os.getpid()
        return _POOL.submit(run_task, svc, task_id, roles)


def run_task(svc, task_id: str, roles: list[str] | None = None) -> None:
    ctx = RequestContext.admin()
    with _POOL_LOCK:
        credentials = _CREDENTIALS.pop(task_id, None)
    try:
        task = svc.data.task_update(ctx, task_id, {"status": "processing"}, from_status="pending")
    except (exceptions.Conflict, exceptions.TaskNotFound):
        return  # taken over (recovery) or gone
    ctx.request_id = task.get("request_id") or ctx.request_id
    notifications.of(svc).task("task.processing", task)
    try:
        with metrics.importing():  # issue 18 metrics
            if task["type"] == "location_import":
                LocationImport(svc, ctx, task).run()
            else:
                _Import(svc, ctx, task, roles or [], credentials).run()
    except Exception:
        LOG.exception("Task %s failed unexpectedly", task_id)


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


class _Import:
    """One ``api_image_import`` (or legacy ``import``) task."""

    def __init__(
        self,
        svc,
        ctx: RequestContext,
        task: dict,
        roles: list[str] | None = None,
        credentials: Credentials | None = None,
    ):
        self.svc, self.ctx, self.task = svc, ctx, task
        self.roles = list(roles or [])
        self.credentials = credentials
        self.plugins: import_plugins.Job | None = None  # the plugins' outcome, if they ran
        self._verdict: format_inspector.Verdict | None = None  # of data the plugins changed
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
        self.beat = heartbeat(svc, ctx, self.task_id)
        self.remote: GlanceDownload | None = None  # glance-download

    def run(self) -> None:
        try:
            image = self.svc.data.image_get(self.ctx, self.image_id)
            virtual_size = None
            if self.method == "web-download":
                virtual_size = self._download(image)
            elif self.method == "glance-download":
                image, virtual_size = self._glance_download(image)
            self._run_plugins(image)
            hashes = self._write_all(image)
            if self.remote is not None and not (self.plugins is not None and self.plugins.data_changed):
                self.remote.check_hashes(hashes)  # the source's data, unconverted
            if virtual_size is not None:
                hashes["virtual_size"] = virtual_size
            if not self.copy:
                values = {"status": states.ACTIVE, **hashes}
                if self.plugins is not None:
                    values = {**values, **self.plugins.values, **self._changed_values()}
                    if self.plugins.properties:
                        values["properties"] = dict(self.plugins.properties)
                active = self.svc.data.image_update(
                    self.ctx, self.image_id, values, from_state=states.IMPORTING
                )
                _notify_active(self.svc, active)
        except Exception as exc:
            message = exc.message if isinstance(exc, exceptions.GlanceServiceError) else str(exc)
            LOG.warning("Import task %s of image %s failed: %s", self.task_id, self.image_id, message)
            if self.remote is not None:
                self.remote.revert()
            self._revert()
            finish_task(self.svc, self.ctx, self.task_id, False, message or type(exc).__name__)
        else:
            message = f"Failed to import to: {', '.join(self.failed)}" if self.failed else ""
            finish_task(self.svc, self.ctx, self.task_id, True, message, {"image_id": self.image_id})
        finally:
            if not self.copy:
                quietly(self.svc.stores.unstage, self.image_id)
            release_lock(self.svc, self.ctx, self.image_id, self.task_id)

    # -- steps ------------------------------------------------------------------------------
    def _glance_download(self, image: dict) -> tuple[dict, int | None]:
        """glance-download (``images/glance_download.py``): the remote record, its formats and
        properties set here, its data staged (size checked as upstream)."""
        method = (self.task.get("input") or {}).get("import_req", {}).get("method") or {}
        self.remote = GlanceDownload(self.svc, self.ctx, self.image_id, method, self.credentials)
        record = self.remote.fetch()
        image = self.remote.apply(image, record)
        self.svc.stores.unstage(self.image_id)
        resp = open_url(self.svc.conf, self.remote.file_url, self.remote.headers)
        with resp:
            if resp.status_code != 200:
                raise exceptions.BadRequest(
                    f"Downloading {self.remote.file_url} failed: HTTP {resp.status_code}."
                )
            reader = format_inspector.InspectingReader(
                _RawReader(resp.raw, self.beat), format_inspector.for_image(self.svc.conf, image)
            )
            staged = self.svc.stores.stage(
                self.image_id, reader, expected_size=None, size_cap=self.svc.conf.image_size_cap
            )
        if staged.size != record["size"]:
            raise exceptions.BadRequest(
                f"Task {self.task_id} failed because downloaded data size {staged.size} is "
                f"different from expected {record['size']}"
            )
        return image, reader.finish().virtual_size

    def _run_plugins(self, image: dict) -> None:
        """The import plugins on the staged data (issue 18, import plugins)."""
        if self.copy or self.task.get("type") != "api_image_import":
            return
        if not import_plugins.configured(self.svc.conf):
            return
        url = self.svc.stores.staged_url(self.image_id)
        if url is None:
            raise exceptions.NotFound(f"No staged data for image {self.image_id}.")
        job = import_plugins.Job(
            self.svc.conf, image, url.split("file://", 1)[-1], self.roles, beat=self.beat
        )
        try:
            self.plugins = import_plugins.run(job)
        except import_plugins.PluginError as exc:
            raise exceptions.GlanceServiceError(str(exc)) from None

    def _changed_values(self) -> dict:
        """What the inspection of data a plugin changed found as it was stored."""
        verdict = self._verdict
        if verdict is None or verdict.virtual_size is None:
            return {}
        return {"virtual_size": verdict.virtual_size}

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
                notifications.of(self.svc).image_import("image.prepare", image, target)
                stored = self._write_one(image, target)
                if reference is not None and (stored.size, stored.hash_value) != reference:
                    quietly(self.svc.stores.delete, stored.url, target)
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
                notifications.of(self.svc).image_import("image.upload", {**image, **hashes}, target)
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
        reader = _Reader(source, self.beat)
        if self.plugins is not None and self.plugins.data_changed:
            # The plugins' output is checked as an upload is (decompressed data may be anything).
            disk_format = self.plugins.get("disk_format")
            reader = format_inspector.InspectingReader(
                reader, format_inspector.for_image(self.svc.conf, {"disk_format": disk_format})
            )
            stored = self._store(source, target, reader)
            self._verdict = reader.finish()
            return stored
        return self._store(source, target, reader)

    def _store(self, source, target: str | None, reader):
        return self.svc.stores.add(
            self.image_id,
            reader,
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


def _notify_active(svc, image: dict | None) -> None:
    """Upstream's events when an import makes the image active: ``image.activate``, the save."""
    if image:
        notifications.of(svc).image("image.activate", image)
        notifications.of(svc).image("image.update", image)


def revert_import(
    svc, ctx: RequestContext, image_id: str, added: list[dict], targets: list, *, copy: bool
) -> None:
    """Undo a failed import: remove the locations it recorded and their data, and any data it
    wrote without recording; a non-copy import returns the image to ``queued``."""
    if not copy or added:
        for loc in added:
            quietly(svc.data.image_location_delete, ctx, image_id, loc["id"])
            quietly(svc.stores.delete, loc["url"], (loc.get("metadata") or {}).get("store"))
    try:
        image = svc.data.image_get(ctx, image_id)
    except exceptions.ImageNotFound:
        image = None
    if image is not None and not copy:
        # Everything the image holds came from this import (it had no data before).
        for loc in image.get("locations") or []:
            quietly(svc.data.image_location_delete, ctx, image_id, loc["id"])
            quietly(svc.stores.delete, loc["url"], (loc.get("metadata") or {}).get("store"))
    recorded = {(loc.get("metadata") or {}).get("store") for loc in (image or {}).get("locations") or []}
    for target in targets:
        if copy and target in recorded:
            continue  # a finished copy (recorded after its hash was checked) stays
        if target is None:
            quietly(svc.stores.discard, image_id)
        else:
            quietly(svc.stores.discard_from, image_id, target)
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
        quietly(svc.data.image_update, ctx, image_id, values, from_state=image["status"])
    elif values:
        quietly(svc.data.image_update, ctx, image_id, values)


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
