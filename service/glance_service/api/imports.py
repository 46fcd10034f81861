"""Interoperable import over HTTP: ``PUT /stage``, ``POST /import``, ``GET /tasks`` of an
image (location import, ``POST``/``GET /locations`` since 2.17: ``api/location_tasks.py``).

These handlers validate and answer at once (202 for the asynchronous ones); the work runs in
``images.import_workers``'s worker pool. Codes follow reference sections 1.3, 1.4 and 1.12.
"""

from __future__ import annotations

import uuid

import webob
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.api import common, stage_proxy
from glance_service.api.image_data import _expected_size, receiving_body
from glance_service.api.router import Route
from glance_service.api.wiring import Services
from glance_service.common import metrics, notifications, process
from glance_service.context import RequestContext
from glance_service.images import (
    format_inspector,
    import_options,
    import_tasks,
    import_workers,
    states,
    unified_limits,
)
from glance_service.images.glance_download import Credentials

LOG = logging.getLogger(__name__)

METHODS = ("glance-direct", "web-download", "copy-image", "glance-download")


def routes() -> list[Route]:
    get = frozenset({"GET"})
    return [
        Route("/v2/images/{image_id}/stage", {"PUT": stage}, "PUT"),
        Route("/v2/images/{image_id}/import", {"POST": import_image}, "POST"),
        Route("/v2/images/{image_id}/tasks", {"GET": image_tasks}, "GET", get),
    ]


def visible_image(svc: Services, ctx: RequestContext, image_id: str) -> dict:
    image = svc.data.image_get(ctx, image_id)
    svc.policy.enforce_image(ctx, "get_image", image)
    return image


# -- stage -------------------------------------------------------------------------------------


def _stage(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    if "glance-direct" not in svc.conf.enabled_import_methods:
        raise exceptions.NotFound("The glance-direct import method is not enabled at this site.")
    if req.content_type != "application/octet-stream":
        raise exceptions.UnsupportedMediaType(
            f"Content type {req.content_type or '(none)'} is not supported: use application/octet-stream."
        )
    expected = _expected_size(req)
    size_cap = svc.conf.image_size_cap
    if expected is not None and expected > size_cap:
        raise exceptions.ImageSizeLimitExceeded(
            f"The image size {expected} exceeds the limit of {size_cap} bytes."
        )
    # Unified limits, as upstream: the declared size against image_stage_total first.
    unified_limits.enforce(
        svc.conf, svc.data, ctx, unified_limits.IMAGE_STAGE_TOTAL, unified_limits.mib(expected)
    )
    image = svc.data.image_get(ctx, image_id)
    svc.policy.enforce_image(ctx, "modify_image", image)
    if image["status"] != states.QUEUED:
        raise exceptions.ImageStatusConflict(
            f"Image {image_id} is {image['status']}: data can be staged only for a queued image."
        )
    uploading = svc.data.image_update(
        ctx,
        image_id,
        {"status": states.UPLOADING, "properties": {import_tasks.WORKER: process.host_marker()}},
        from_state=states.QUEUED,
    )
    notifications.of(svc).image("image.update", uploading or image)
    # Inspected as it streams (415 on a mismatch or unsafe header), like an upload.
    reader = format_inspector.InspectingReader(
        _Body(req.environ["wsgi.input"]), format_inspector.for_image(svc.conf, image)
    )
    try:
        # Unified limits: this image, now 'uploading', counts itself.
        unified_limits.enforce(svc.conf, svc.data, ctx, unified_limits.IMAGE_COUNT_UPLOADING)
        try:
            stored = svc.stores.stage(image_id, reader, expected_size=expected, size_cap=size_cap)
        except exceptions.Duplicate:
            if reader.consumed:
                raise
            # Staged data no image is 'uploading' for: left by a process that died. Replace it.
            svc.stores.unstage(image_id)
            stored = svc.stores.stage(image_id, reader, expected_size=expected, size_cap=size_cap)
        verdict = reader.finish()
        # As upstream, the staged image has its size (image_stage_total counts it).
        staged: dict = {"size": stored.size}
        if verdict.virtual_size is not None:
            staged["virtual_size"] = verdict.virtual_size
        here = import_tasks.self_url(svc.conf)
        if here:
            # As upstream: this node holds the data; another node hands it the import.
            staged["properties"] = {import_tasks.STAGE_HOST: here}
        uploading = svc.data.image_update(ctx, image_id, staged, from_state=states.UPLOADING) or uploading
        notifications.of(svc).image("image.update", uploading or image)
    except BaseException as exc:
        import_tasks.quietly(svc.stores.unstage, image_id)
        try:
            svc.data.image_update(
                ctx, image_id, states.reset_on_queued({"status": states.QUEUED}), from_state=states.UPLOADING
            )
        except (exceptions.ImageNotFound, exceptions.ImageStatusConflict):
            if isinstance(exc, exceptions.GlanceServiceError):
                raise exceptions.Gone(f"Image {image_id} was deleted while staging.") from exc
        raise
    return common.no_content()


class _Body:
    def __init__(self, stream):
        self._stream = stream
        self.consumed = False

    def read(self, n: int) -> bytes:
        self.consumed = True
        try:
            return metrics.received(self._stream.read(n))  # issue 18 metrics: bytes uploaded
        except Exception as exc:
            raise exceptions.BadRequest(f"The upload was interrupted: {exc or type(exc).__name__}.") from exc


# -- import -------------------------------------------------------------------------------------
def _parse_import(body: object, svc: Services) -> tuple[str, dict]:
    """The checks Glance makes before looking at the image (its request deserializer)."""
    if not isinstance(body, dict):
        raise exceptions.BadRequest("The import request must be a JSON object.")
    method = body.get("method")
    if not isinstance(method, dict) or not isinstance(method.get("name"), str) or not method["name"]:
        raise exceptions.BadRequest("Import request requires a 'method' field with a 'name'.")
    name = method["name"]
    if name not in svc.conf.enabled_import_methods:
        raise exceptions.BadRequest(f"Import method {name} is not valid or not enabled at this site.")
    for key in ("all_stores", "all_stores_must_succeed"):
        if key in body and not isinstance(body[key], bool):
            raise exceptions.BadRequest(f"'{key}' must be a boolean (true or false).")
    return name, body


def _targets(req: webob.Request, svc: Services, image: dict, name: str, body: dict) -> list[str | None]:
    """The stores to import to. Without enabled_backends Glance ignores ``stores``,
    ``all_stores`` and ``X-Image-Meta-Store`` (its one store, ``[None]``); with it they are
    checked as ``glance.common.utils.get_stores_from_request`` does. An empty list: a
    copy-image to all stores of an image that is in all of them already (nothing to do)."""
    if not svc.stores.enabled:
        if name == "copy-image":
            raise exceptions.BadRequest("copy-image needs multiple stores (enabled_backends).")
        return [None]
    stores = svc.stores
    header = req.headers.get("X-Image-Meta-Store")
    existing = {(loc.get("metadata") or {}).get("store") for loc in image.get("locations") or []}
    if body.get("all_stores"):
        if "stores" in body or header is not None:
            raise exceptions.BadRequest(
                "All_stores parameter can't be used with x-image-meta-store header or stores parameter"
            )
        wanted = [s for s in stores.enabled if not stores.is_read_only(s)]
        if name == "copy-image":
            wanted = [s for s in wanted if s not in existing]
        return wanted
    if "stores" in body:
        if header is not None:
            raise exceptions.BadRequest(
                "Stores parameter and x-image-meta-store header can't be both specified"
            )
        listed = body["stores"]
        if not isinstance(listed, list) or not all(isinstance(s, str) and s for s in listed):
            raise exceptions.BadRequest("'stores' must be a list of store identifiers.")
        wanted = list(dict.fromkeys(listed))
    else:
        wanted = []
    if not wanted:
        wanted = [header or stores.default_backend]
    for store in wanted:
        if store not in stores.enabled:
            raise exceptions.Conflict(f"Store {store} is not available at this site.")
        if stores.is_read_only(store):
            raise exceptions.BadRequest(f"Store {store} is read-only.")
        if name == "copy-image" and store in existing:
            raise exceptions.BadRequest(f"Image is already present at store '{store}'.")
    return wanted


def _check_status(image: dict, name: str) -> None:
    status = image["status"]
    if name == "copy-image":
        if status != states.ACTIVE:
            raise exceptions.ImageStatusConflict(
                "Only images with status active can be targeted for copying."
            )
        return
    if status == states.ACTIVE:
        raise exceptions.ImageStatusConflict("Image with status active cannot be target for import.")
    if name == "glance-direct" and status != states.UPLOADING:
        raise exceptions.ImageStatusConflict(
            "Image needs to be staged before 'glance-direct' method can be used."
        )
    if name in ("web-download", "glance-download") and status != states.QUEUED:
        raise exceptions.ImageStatusConflict(f"Image needs to be in 'queued' state to use '{name}' method.")
    for key in ("container_format", "disk_format"):
        if not image.get(key):
            raise exceptions.ImageStatusConflict(f"'{key}' needs to be set before import.")


def _check_glance_download(method: dict) -> None:
    """glance-download's fields, as Glance checks them (after the image's status and formats,
    before policy); the interface defaults to ``public`` in the recorded request."""
    for key in ("glance_region", "glance_image_id"):
        if key not in method:
            raise exceptions.BadRequest(f"'{key}' needs to be set for glance-download import method")
    remote_id = method["glance_image_id"]
    try:
        uuid.UUID(remote_id)
    except (ValueError, TypeError, AttributeError) as exc:
        raise exceptions.BadRequest(f"Remote image id does not look like a UUID: {remote_id}") from exc
    method.setdefault("glance_service_interface", "public")
    for key in ("glance_region", "glance_service_interface"):
        if not isinstance(method[key], str) or not method[key]:
            raise exceptions.BadRequest(f"'{key}' must be a non-empty string.")


def take_lock(svc: Services, ctx: RequestContext, image_id: str, task_id: str) -> None:
    """The image's import lock for ``task_id``; 409 while another running task holds it. A lock
    left by a finished or vanished task is taken over."""
    admin = RequestContext.admin(ctx.request_id)
    for _ in range(2):
        try:
            svc.data.image_set_property_atomic(admin, image_id, import_tasks.IMPORT_TASK, task_id)
            return
        except exceptions.Duplicate:
            holder = (svc.data.image_get(admin, image_id).get("properties") or {}).get(
                import_tasks.IMPORT_TASK
            )
            if holder is None:
                continue
            try:
                running = svc.data.task_get(admin, holder)["status"] in ("pending", "processing")
            except exceptions.TaskNotFound:
                running = False
            if running:
                break
            import_tasks.release_lock(svc, admin, image_id, holder)
    raise exceptions.Conflict(f"Image {image_id} has an import in progress.")


def new_task(svc: Services, ctx: RequestContext, image_id: str, task_type: str, task_input: dict) -> dict:
    task = svc.data.task_create(
        ctx,
        {
            "type": task_type,
            "status": "pending",
            "image_id": image_id,
            "request_id": ctx.request_id,
            "user_id": ctx.user_id,
            "input": task_input,
        },
    )
    notifications.of(svc).task("task.create", task)
    return task


def start(
    svc: Services,
    ctx: RequestContext,
    image: dict,
    task_type: str,
    task_input: dict,
    values: dict,
    from_state,
    credentials: Credentials | None = None,
    submit: bool = True,
) -> dict:
    """Create the task, take the lock, apply ``values`` (from ``from_state``), then run it
    (``submit``; else the caller does). Any failure before the task runs closes it as failed
    and frees the lock."""
    image_id = image["id"]
    task = new_task(svc, ctx, image_id, task_type, task_input)
    admin = RequestContext.admin(ctx.request_id)
    try:
        take_lock(svc, ctx, image_id, task["id"])
        try:
            updated = svc.data.image_update(admin, image_id, values, from_state=from_state)
        except BaseException:
            import_tasks.release_lock(svc, admin, image_id, task["id"])
            raise
    except BaseException as exc:
        message = exc.message if isinstance(exc, exceptions.GlanceServiceError) else "Could not start"
        import_tasks.finish_task(svc, admin, task["id"], False, message)
        raise
    notifications.of(svc).image("image.update", updated or image)
    if submit:
        # roles: import plugins; credentials: glance-download
        import_workers.submit(svc, task["id"], roles=list(ctx.roles), credentials=credentials)
        notifications.of(svc).task("task.run", task)
    return task


def _within_limits(
    svc: Services, ctx: RequestContext, image: dict, name: str, targets: list, task_id: str
) -> bool:
    """Unified limits once the image is marked importing, as upstream's import flow checks them:
    glance-direct against image_size_total with the staged size, the other methods against
    image_stage_total and image_count_uploading. Refused: the request keeps its 202, the task
    fails with the 413's text, the image goes back (copy: its stores unmarked; else 'queued',
    staged data removed) and the lock is freed."""
    if not unified_limits.enabled(svc.conf):
        return True
    delta = unified_limits.mib(image.get("size"))
    if name == "glance-direct":
        checks = [(unified_limits.IMAGE_SIZE_TOTAL, delta)]
    else:
        checks = [(unified_limits.IMAGE_STAGE_TOTAL, delta), (unified_limits.IMAGE_COUNT_UPLOADING, 0)]
    try:
        for resource, amount in checks:
            unified_limits.enforce(svc.conf, svc.data, ctx, resource, amount)
    except Exception as exc:
        # Over a limit, or the limits could not be read (Keystone: the error goes up, a 500).
        admin = RequestContext.admin(ctx.request_id)
        props: dict = {}
        if svc.stores.enabled:
            current = svc.data.image_get(admin, image["id"])
            marked = [
                s for s in (current.get("properties") or {}).get(import_tasks.IMPORTING, "").split(",") if s
            ]
            props[import_tasks.IMPORTING] = ",".join(s for s in marked if s not in targets)
        values: dict = {"properties": props} if props else {}
        if name != "copy-image":
            values = states.reset_on_queued({**values, "status": states.QUEUED})
            if name == "glance-direct":
                import_tasks.quietly(svc.stores.unstage, image["id"])
        if values:
            import_tasks.quietly(svc.data.image_update, admin, image["id"], values)
        import_tasks.release_lock(svc, admin, image["id"], task_id)
        over = isinstance(exc, exceptions.LimitExceeded)
        import_tasks.finish_task(
            svc, admin, task_id, False, exc.message if over else "Could not check limits"
        )
        if not over:
            raise
        return False
    return True


def import_image(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    # Glance's order: body, image (404), status (409), policy (403), stores, then
    # all_stores_must_succeed on a single store and the web-download URI (400).
    name, body = _parse_import(common.read_json(req), svc)
    # Unified limits, as upstream: a project already over image_size_total imports nothing.
    unified_limits.enforce(svc.conf, svc.data, ctx, unified_limits.IMAGE_SIZE_TOTAL)
    image = svc.data.image_get(ctx, image_id)
    _check_status(image, name)
    if name == "glance-download":
        _check_glance_download(body["method"])
    svc.policy.enforce_image(ctx, "copy_image" if name == "copy-image" else "modify_image", image)
    targets = _targets(req, svc, image, name, body)
    if body.get("all_stores_must_succeed") is False and not svc.stores.enabled:
        raise exceptions.BadRequest("all_stores_must_succeed can only be set with enabled_backends.")
    method = body["method"]
    if name == "web-download" and not import_options.uri_allowed(svc.conf, method.get("uri")):
        raise exceptions.BadRequest(f"URI for web-download does not pass filtering: {method.get('uri')}")
    if name == "glance-direct":
        host = stage_proxy.stage_host(svc.conf, image, req.headers)
        if host is not None:
            # Staged on another API node: that node imports it, with the caller's credentials.
            return _accepted(stage_proxy.forward(req, ctx, host, body).request_id)
    if targets:
        props = {import_tasks.WORKER: process.host_marker()}
        if (image.get("properties") or {}).get(import_tasks.STAGE_HOST):
            props[import_tasks.STAGE_HOST] = ""  # upstream pops it when the import starts
        if svc.stores.enabled:
            props.update({import_tasks.IMPORTING: ",".join(targets), import_tasks.FAILED: ""})
        values: dict = {"properties": props} if props else {}
        if name != "copy-image":
            values["status"] = states.IMPORTING
        task_input = {"image_id": image_id, "import_req": body, "backend": targets}
        # glance-download reads the other region with the caller's token and catalog
        creds = Credentials(ctx.auth_token, ctx.service_catalog) if name == "glance-download" else None
        task = start(
            svc, ctx, image, "api_image_import", task_input, values, image["status"], creds, submit=False
        )
        if _within_limits(svc, ctx, image, name, targets, task["id"]):
            import_workers.submit(svc, task["id"], roles=list(ctx.roles), credentials=creds)
            notifications.of(svc).task("task.run", task)
    # else: copy-image to all stores and the image is in every one already (Glance: 202, no task)
    return _accepted()


def _accepted(request_id: str | None = None) -> webob.Response:
    resp = webob.Response(status=202)
    resp.headers.pop("Content-Type", None)
    if request_id:
        # The id of the node that did the work (upstream answers with the remote's).
        resp.headers["x-openstack-request-id"] = request_id
    return resp


# -- tasks of an image -------------------------------------------------------------------------
def image_tasks(req: webob.Request, svc: Services, ctx: RequestContext, image_id: str) -> webob.Response:
    visible_image(svc, ctx, image_id)
    return common.json_response({"tasks": svc.data.task_get_by_image(ctx, image_id)})


# The handler the route table names (defined last: it wraps _stage).
stage = receiving_body(_stage)
