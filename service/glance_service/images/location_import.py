"""Location import (``POST /v2/images/{id}/locations``, since 2.17): the task that hashes the data
at a location the caller added to a ``queued`` image and activates the image, as Glance's
``location_import`` flow. ``images/import_workers.py``'s pool runs it.
"""

from __future__ import annotations

from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common import notifications
from glance_service.context import RequestContext
from glance_service.images import states
from glance_service.images.import_tasks import finish_task, heartbeat, quietly, release_lock

LOG = logging.getLogger(__name__)


class LocationImport:
    """One ``location_import`` task: hash the data a new location holds (``do_secure_hash``),
    check it against the caller's ``validation_data``, and activate the image."""

    def __init__(self, svc, ctx: RequestContext, task: dict):
        self.svc, self.ctx, self.task = svc, ctx, task
        info = task.get("input") or {}
        self.task_id = task["id"]
        self.image_id = task["image_id"]
        self.url = info.get("loc_url")
        self.validation = info.get("validation_data") or {}
        self.beat = heartbeat(svc, ctx, self.task_id)

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
            active = self.svc.data.image_update(
                self.ctx, self.image_id, {"status": states.ACTIVE, **values}, from_state=states.IMPORTING
            )
            notifications.of(self.svc).image("image.update", active or {"id": self.image_id})
        except Exception as exc:
            message = exc.message if isinstance(exc, exceptions.GlanceServiceError) else str(exc)
            LOG.warning("Location import of image %s failed: %s", self.image_id, message)
            if location is not None and not self.url.lower().startswith("http"):
                quietly(self.svc.data.image_location_delete, self.ctx, self.image_id, location["id"])
            quietly(
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
