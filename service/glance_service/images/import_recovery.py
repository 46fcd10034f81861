"""Start-up recovery of imports: the tasks and stagings a glance-api process left when it died.

A task still ``pending`` or ``processing`` whose process is dead (its marker names this host
and no such process runs) or silent (another host's, not refreshed for ``import_stale_timeout``)
is failed and undone: its image goes back to a consistent state, with no data left that no
location records. An image left ``uploading`` by a stage request that died goes back to
``queued``.
"""

from __future__ import annotations

import datetime

from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common.process import host_alive
from glance_service.context import RequestContext
from glance_service.images import states
from glance_service.images.import_tasks import (
    IMPORT_TASK,
    TASK_TYPES,
    finish_task,
    quietly,
    release_lock,
    staged_elsewhere,
    worker_marker,
)
from glance_service.images.import_workers import revert_import

LOG = logging.getLogger(__name__)


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
    alive = host_alive(worker_marker(image.get("properties") or {}))
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
                    quietly(svc.data.image_location_delete, ctx, image_id, loc["id"])
            quietly(
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
            quietly(svc.stores.unstage, image_id)
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
        alive = host_alive(worker_marker(props))
        if alive or (alive is None and (image.get("updated_at") or "") >= stale_before):
            continue
        quietly(svc.stores.unstage, image["id"])
        quietly(
            svc.data.image_update,
            ctx,
            image["id"],
            states.reset_on_queued({"status": states.QUEUED}),
            from_state=states.UPLOADING,
        )
        LOG.warning(
            "Image %s was left 'uploading' by an interrupted stage: returned to 'queued'", image["id"]
        )
