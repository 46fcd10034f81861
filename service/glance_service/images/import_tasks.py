"""What every import task shares: the image properties it keeps, its lock, its heartbeat and
its end.

An import (``api/imports.py`` accepts it, ``images/import_workers.py`` or
``images/location_import.py`` runs it, ``images/import_recovery.py`` undoes it when its process
died) holds the image's ``os_glance_import_task`` lock, marks the image with the process doing
the work and, on a multi-store import, the stores still to do and those that failed.
"""

from __future__ import annotations

import datetime
import time

from oslo_config import cfg
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common import notifications
from glance_service.common.masking import mask_secrets
from glance_service.context import RequestContext

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
        task = svc.data.task_update(ctx, task_id, values)
    except exceptions.GlanceServiceError as exc:
        LOG.error("Could not close task %s: %s", task_id, exc)
    else:
        notifications.of(svc).task("task.success" if ok else "task.failure", task)


def release_lock(svc, ctx: RequestContext, image_id: str, task_id: str) -> None:
    try:
        svc.data.image_delete_property_atomic(ctx, image_id, IMPORT_TASK, task_id)
    except (exceptions.NotFound, exceptions.ImageNotFound):
        pass


def heartbeat(svc, ctx: RequestContext, task_id: str):
    state = {"next": time.monotonic() + 60}

    def beat() -> None:
        if time.monotonic() >= state["next"]:
            state["next"] = time.monotonic() + 60
            svc.data.task_update(ctx, task_id, {"status": "processing"}, from_status="processing")

    return beat


def quietly(fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - cleanup: the first error is what counts
        LOG.warning("Cleanup step %s failed: %s", getattr(fn, "__name__", fn), exc)
