"""The scrubber: removes the data of images deleted with ``[DEFAULT] delayed_delete``.

A delayed delete leaves the image ``pending_delete`` with its data in the store. Once the
image has waited ``scrub_time`` seconds, a scrubber claims it (``pending_delete`` →
``deleted`` in one conditional UPDATE: of several scrubbers, on several workers or API hosts,
one wins; a restore can no longer slip in), removes the data at each ``pending_delete``
location, and marks each location ``deleted`` once its data is gone.

Every step can be cut by a crash and re-run: a claimed image whose locations are still
``pending_delete`` is listed again and finished, and removing data that is already gone is
not an error. Data that cannot be removed now (the store refuses because it is in use, e.g.
RBD with copy-on-write clones, or cannot be reached) keeps its location ``pending_delete``,
the image goes back to ``pending_delete`` (so it can still be restored, as in Glance), and
the next run tries again; it is never forgotten.

Runs periodically (every ``wakeup_time`` seconds) in a process the API starts next to its
workers, and on demand with ``glance-manage scrub``.
"""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from oslo_log import log as logging

from glance_service import exceptions
from glance_service.context import RequestContext

LOG = logging.getLogger(__name__)

BATCH = 100


def _cutoff(scrub_time: int) -> str:
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    return (now - datetime.timedelta(seconds=max(0, scrub_time))).isoformat(timespec="microseconds")


class Scrubber:
    """One scrubbing pass over ``data`` (a ``DataAPI``) and ``stores`` (``store.Stores``)."""

    def __init__(self, data, stores, scrub_time: int = 0, pool_size: int = 1):
        self.data = data
        self.stores = stores
        self.scrub_time = scrub_time
        self.pool_size = max(1, pool_size)

    @classmethod
    def from_conf(cls, conf, data, stores) -> Scrubber:
        return cls(data, stores, scrub_time=conf.scrub_time, pool_size=conf.scrub_pool_size)

    def _ctx(self) -> RequestContext:
        return RequestContext.admin(request_id=None)

    def run_once(self) -> dict[str, int]:
        """Scrub every image that is due; returns counts (images finished, locations removed,
        locations that failed and wait for the next run, images another scrubber took)."""
        counts = {"images": 0, "locations": 0, "failed": 0, "skipped": 0}
        ctx = self._ctx()
        attempted: set[str] = set()
        cutoff = _cutoff(self.scrub_time)
        with ThreadPoolExecutor(max_workers=self.pool_size) as pool:
            while True:
                batch = self.data.image_scrub_list(ctx, deleted_before=cutoff, limit=BATCH)
                todo = [image for image in batch if image["id"] not in attempted]
                if not todo:
                    # Nothing new: what is left failed in this pass and waits for the next one.
                    break
                attempted.update(image["id"] for image in todo)
                for result in pool.map(lambda image: self.scrub_image(ctx, image), todo):
                    for key, value in result.items():
                        counts[key] += value
                if len(batch) < BATCH:
                    break
        if any(counts.values()):
            LOG.info(
                "Scrubber: %(images)d image(s) deleted, %(locations)d location(s) removed, "
                "%(failed)d failed (retried next run), %(skipped)d taken by another scrubber",
                counts,
            )
        return counts

    def scrub_image(self, ctx: RequestContext, image: dict) -> dict[str, int]:
        counts = {"images": 0, "locations": 0, "failed": 0, "skipped": 0}
        image_id = image["id"]
        if image["status"] == "pending_delete":
            if not self.data.image_scrub_claim(ctx, image_id):
                counts["skipped"] = 1
                return counts
        # else: claimed by a scrubber that stopped before it finished; finish its work.
        failed = 0
        for location in image.get("locations") or []:
            try:
                self.stores.delete(location["url"], (location.get("metadata") or {}).get("store"))
            except exceptions.GlanceServiceError as exc:
                LOG.warning(
                    "Scrubber: data of image %s at %s not removed: %s", image_id, location["url"], exc
                )
                failed += 1
                continue
            except Exception:
                LOG.exception("Scrubber: data of image %s at %s not removed", image_id, location["url"])
                failed += 1
                continue
            if self.data.image_scrub_location_done(ctx, image_id, location["id"]):
                counts["locations"] += 1
        counts["failed"] = failed
        if not failed:
            counts["images"] = 1
            return counts
        # Nothing of what the store kept is marked deleted: the image waits in pending_delete.
        self.data.image_scrub_release(ctx, image_id)
        LOG.warning(
            "Scrubber: image %s keeps %d location(s) whose data could not be removed; it stays "
            "pending_delete and is retried at the next run",
            image_id,
            failed,
        )
        return counts

    def restore(self, image_id: str) -> dict:
        """``pending_delete`` → ``active`` (``ImageStatusConflict`` once scrubbing has begun)."""
        return self.data.image_restore(self._ctx(), image_id)


class Periodic:
    """Runs ``scrubber.run_once`` every ``interval`` seconds until stopped (or, in a child
    process, until its parent is gone)."""

    def __init__(self, scrubber: Scrubber, interval: float):
        self.scrubber = scrubber
        self.interval = max(1.0, float(interval))
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, parent_pid: int | None = None) -> None:
        first = True
        while not self._stop.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                return
            try:
                self.scrubber.run_once()
                if first:
                    # Says the scrubber is alive, and when its start-up pass is over.
                    LOG.info("Scrubber: first run done; the next in %s s", self.interval)
                    first = False
            except Exception:
                # A registry or database outage: try again at the next wake-up.
                LOG.exception("Scrubber run failed; retrying in %s s", self.interval)
            self._stop.wait(self.interval)


def _child_main(conf, parent_pid: int, build_data_api: Callable, build_stores: Callable) -> None:
    data = build_data_api(conf)
    stores = build_stores(conf)
    Periodic(Scrubber.from_conf(conf, data, stores), conf.wakeup_time).run(parent_pid)


def start_periodic(conf, build_data_api: Callable, build_stores: Callable):
    """Start the periodic scrubber in its own process (one per API host, whatever the number of
    workers): it builds its own registry client and stores (with the builders the caller hands
    it, ``api.wiring``'s: the domain does not import the API), so nothing is shared with the
    gunicorn workers forked later. Returns the process, or None when delayed delete is off."""
    if not conf.delayed_delete:
        return None
    import multiprocessing

    process = multiprocessing.get_context("fork").Process(
        target=_child_main,
        args=(conf, os.getpid(), build_data_api, build_stores),
        name="glance-api-scrubber",
        daemon=True,
    )
    process.start()
    LOG.info("Delayed delete is on: scrubber process %s wakes every %s s", process.pid, conf.wakeup_time)
    return process
