"""The end of an upload that did not finish: settled by its own process, or at start-up.

An upload records the marker of its process in ``os_glance_upload_host`` (``upload_marker``).
When it fails and the data API cannot say how it ended (the registry down, not answering, or
the activation's answer lost), ``api/image_data.py`` hands it to this process's ``Reconciler``,
which asks again until the registry answers and then keeps the data or removes it
(``Leftover.settle``). An upload whose process died is returned to ``queued`` by
``recover_interrupted_uploads`` when glance-api starts: on this host when the marker's process
is gone, on another host once the image has not been refreshed for ``upload_stale_timeout``.
"""

from __future__ import annotations

import datetime
import threading

from oslo_config import cfg
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common.process import host_alive, host_marker
from glance_service.common.registrar import registrar
from glance_service.context import RequestContext
from glance_service.images import states

LOG = logging.getLogger(__name__)

# "<hostname>:<pid>:<process start time>" of the process that uploads (hidden by the views)
UPLOAD_HOST = "os_glance_upload_host"

recovery_opts = [
    cfg.IntOpt(
        "upload_stale_timeout",
        default=3600,
        min=60,
        help="Seconds after which an image still 'saving' whose upload runs on another host (and "
        "has not refreshed the image since) is taken as interrupted: glance-api returns it to "
        "'queued' at start-up. Live uploads refresh the image every upload_stale_timeout/4 "
        "seconds (at most every 60 s).",
    ),
]


register_opts = registrar((None, recovery_opts))


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    return [(None, recovery_opts)]


register_opts(cfg.CONF)


def stale_timeout(svc) -> int:
    """``[DEFAULT] upload_stale_timeout`` (its default where the option is not registered)."""
    try:
        value = svc.conf.upload_stale_timeout
    except (AttributeError, cfg.NoSuchOptError):
        return 3600
    return 3600 if value is None else value


def upload_marker() -> dict[str, str]:
    """The image property naming this process as the uploader."""
    return {UPLOAD_HOST: host_marker()}


class Leftover:
    """A failed upload whose end is not settled yet: the image may still be ``saving`` (with
    this process's marker), the data may still be in the store at ``url``."""

    def __init__(self, svc, image_id: str, url: str | None, marker: str):
        self.svc = svc
        self.image_id = image_id
        self.url = url
        self.marker = marker
        self.failures = 0
        # Set once this job has returned the image to 'queued': what is left is its data.
        self.reset = False
        # The activation may still be run by a registry that stalled: leave 'saving' before
        # the data goes. Otherwise the data goes first: a new upload may begin the moment the
        # image is 'queued', and it writes where this one did.
        self.reset_first = False

    def settle(self) -> str:
        """Ask the data API how the upload ended and finish it; what happened, for the log.
        Raises whatever the data API or the store raise (the caller tries again later).

        - the image is ``saving`` with this process's marker: the upload is ours and not
          recorded (or only its location is, without the two-call path's final update):
          remove the data, return the image to ``queued``;
        - a live location holds our URL: the registry recorded the upload (``active``), or
          the image went on from there (deactivated, pending delete): keep the data;
        - the image is gone (deleted): the data is nobody's, remove it;
        - anything else (``queued`` again, another upload or import running): the image was
          taken over by another process, whose recovery removed the data; leave it alone.
        """
        svc, image_id = self.svc, self.image_id
        ctx = RequestContext.admin()
        try:
            image = svc.data.image_get(ctx, image_id, include_deleted=True)
        except exceptions.ImageNotFound:
            image = None
        if image is None or image.get("deleted") or image["status"] == states.DELETED:
            self._remove_data()
            return "the image was deleted; its data removed"
        ours = [
            loc
            for loc in image.get("locations") or []
            if self.url is not None
            and loc.get("url") == self.url
            and loc.get("status", "active") != "deleted"
        ]
        marker = (image.get("properties") or {}).get(UPLOAD_HOST)
        if not self.reset_first and image["status"] == states.SAVING and marker == self.marker:
            for loc in ours:
                try:
                    svc.data.image_location_delete(ctx, image_id, loc["id"])
                except exceptions.ImageNotFound:
                    pass
            self._remove_data()
            try:
                svc.data.image_update(
                    ctx, image_id, states.reset_on_queued({"status": states.QUEUED}), from_state=states.SAVING
                )
            except (exceptions.ImageNotFound, exceptions.ImageStatusConflict):
                return "the image changed meanwhile; its data removed"
            return "returned to 'queued', its data removed"
        if not self.reset and image["status"] == states.SAVING and marker == self.marker:
            # The image leaves 'saving' first, and only then does the data go: the
            # activation may still be queued in the registry (a registry that stalled), and
            # whichever of the two lands first wins. Removing the data before the reset
            # could leave the activation's 'active' image without data.
            try:
                svc.data.image_update(
                    ctx, image_id, states.reset_on_queued({"status": states.QUEUED}), from_state=states.SAVING
                )
            except exceptions.ImageStatusConflict:
                return self.settle()  # the activation landed first: read the image again
            except exceptions.ImageNotFound:
                self._remove_data()
                return "the image was deleted; its data removed"
            self.reset = True
            image = svc.data.image_get(ctx, image_id, include_deleted=True)
        if self.reset:
            for loc in ours:
                try:
                    svc.data.image_location_delete(ctx, image_id, loc["id"])
                except exceptions.ImageNotFound:
                    pass
            if image["status"] != states.QUEUED and not ours:
                # Queued again, a new upload has begun since: it writes where ours did, so
                # removing "our" data now would remove the new upload's.
                return "returned to 'queued'; a new upload has begun since"
            self._remove_data()
            return "returned to 'queued', its data removed"
        if ours:
            return f"the registry had recorded it: the image is '{image['status']}' with its data"
        return f"the image is '{image['status']}', taken over by another process; nothing to do"

    def _remove_data(self) -> None:
        if self.url is not None:
            self.svc.stores.delete(self.url)
        # Partial data of a write cut short (a live upload's partial files are locked).
        self.svc.stores.discard(self.image_id)


class Reconciler:
    """Finishes this process's failed uploads that the data API could not confirm: one
    thread, started on first use, asks again until the registry answers (every 0.5 s at
    first, then up to every 5 s), then settles each upload (``Leftover.settle``).

    Why here and not in a periodic sweep: only the process that ran an upload knows where
    its data went (the store URL) and that the upload is dead rather than slow; another
    process or host can only guess from ``updated_at`` after ``upload_stale_timeout``, and
    must not reset uploads it does not own. An upload left by a process that died (a crash,
    a worker replaced) carries that process's marker and is returned by the start-up
    recovery (``recover_interrupted_uploads``)."""

    FIRST_DELAY = 0.5
    MAX_DELAY = 5.0
    # Errors other than an unavailable registry or store are not expected to go away:
    # after this many attempts the image is left to the start-up recovery.
    GIVE_UP_AFTER = 20

    def __init__(self):
        self._jobs: dict[str, Leftover] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, job: Leftover, cause: BaseException) -> None:
        LOG.warning(
            "Upload of image %s failed (%s) and could not be finished now: finishing it once "
            "the registry answers",
            job.image_id,
            cause,
        )
        with self._lock:
            self._jobs[job.image_id] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="upload-reconciler", daemon=True)
                self._thread.start()
        self._wake.set()

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def _run(self) -> None:
        delay = self.FIRST_DELAY
        while True:
            with self._lock:
                idle = not self._jobs
            self._wake.wait(None if idle else delay)
            self._wake.clear()
            with self._lock:
                jobs = list(self._jobs.values())
            failed = False
            for job in jobs:
                if self._attempt(job):
                    with self._lock:
                        if self._jobs.get(job.image_id) is job:
                            del self._jobs[job.image_id]
                else:
                    failed = True
            delay = min(delay * 2, self.MAX_DELAY) if failed else self.FIRST_DELAY

    def _attempt(self, job: Leftover) -> bool:
        """True when the job is done (settled, or given up)."""
        try:
            outcome = job.settle()
        except Exception as exc:  # noqa: BLE001 - logged; tried again
            job.failures += 1
            expected = isinstance(exc, (exceptions.ServiceUnavailable, OSError))
            if job.failures == 1 or not expected:
                LOG.warning("Failed upload of image %s not finished yet, trying again: %s", job.image_id, exc)
            if not expected and job.failures >= self.GIVE_UP_AFTER:
                LOG.error(
                    "Giving up finishing the failed upload of image %s: it stays 'saving' until "
                    "glance-api's start-up recovery",
                    job.image_id,
                )
                return True
            return False
        LOG.warning("Failed upload of image %s finished: %s", job.image_id, outcome)
        return True


_RECONCILER: Reconciler | None = None
_RECONCILER_LOCK = threading.Lock()


def reconciler() -> Reconciler:
    global _RECONCILER
    with _RECONCILER_LOCK:
        if _RECONCILER is None:
            _RECONCILER = Reconciler()
        return _RECONCILER


# -- start-up recovery ---------------------------------------------------------------------------
def recover_interrupted_uploads(svc) -> int:
    """Return images whose upload died with its process to ``queued``, their partial data
    removed. Called by glance-api at start-up, before it serves. Returns how many images."""
    ctx = RequestContext.admin()
    removed = svc.stores.cleanup_partial()
    if removed:
        LOG.info("Removed %d partial image file(s) left by interrupted uploads", removed)
    stale = datetime.timedelta(seconds=stale_timeout(svc))
    stale_before = (datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - stale).isoformat()
    recovered = 0
    for image in svc.data.image_get_by_status(ctx, states.SAVING):
        alive = host_alive((image.get("properties") or {}).get(UPLOAD_HOST))
        if alive is None:  # another host's upload: interrupted once it stopped refreshing the image
            orphan = (image.get("updated_at") or "") < stale_before
        else:
            orphan = not alive
        if orphan and _give_back(svc, ctx, image):
            recovered += 1
    return recovered


def _give_back(svc, ctx: RequestContext, image: dict) -> bool:
    image_id = image["id"]
    try:
        for loc in image.get("locations") or []:
            svc.stores.delete(loc["url"])
            svc.data.image_location_delete(ctx, image_id, loc["id"])
        svc.stores.discard(image_id)
        svc.data.image_update(
            ctx, image_id, states.reset_on_queued({"status": states.QUEUED}), from_state=states.SAVING
        )
    except (exceptions.ImageNotFound, exceptions.ImageStatusConflict):
        return False
    except exceptions.GlanceServiceError as exc:
        LOG.error("Could not recover interrupted upload of image %s: %s", image_id, exc)
        return False
    LOG.warning("Image %s was left 'saving' by an interrupted upload: returned to 'queued'", image_id)
    return True
