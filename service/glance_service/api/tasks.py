"""``/v2/tasks`` (Glance's deprecated tasks API, admin only by default) and the task schemas.

``POST`` accepts Glance's legacy ``import`` task (``import_from`` an http(s) URL into a new
image); it runs in the same worker pool as interoperable import. Tasks are never deleted
through the API: ``DELETE`` is always 405 (``Allow: GET``).
"""

from __future__ import annotations

import urllib.parse
import uuid

import webob

from glance_service import exceptions
from glance_service.api import common
from glance_service.api.router import Route
from glance_service.api.wiring import Services
from glance_service.common import notifications, process
from glance_service.context import RequestContext
from glance_service.images import import_options, import_tasks
from glance_service.images.filters import limit_param
from glance_service.images.image_schema import paged_collection

STATUSES = ("pending", "processing", "success", "failure")
TYPES = ("import", "api_image_import", "location_import")
_HEX = "[0-9a-fA-F]"
_UUID_PATTERN = f"^({_HEX}){{8}}-({_HEX}){{4}}-({_HEX}){{4}}-({_HEX}){{4}}-({_HEX}){{12}}$"
SORT_KEYS = ("created_at", "updated_at", "id", "type", "status", "expires_at", "owner")


def routes() -> list[Route]:
    get = frozenset({"GET"})
    return [
        Route("/v2/tasks", {"GET": index, "POST": create}, "GET, POST", get),
        Route("/v2/tasks/{task_id}", {"GET": show}, "GET", get),
        Route("/v2/schemas/task", {"GET": schema}, "GET", get),
        Route("/v2/schemas/tasks", {"GET": collection_schema}, "GET", get),
    ]


def _enforce(svc: Services, ctx: RequestContext, rule: str) -> None:
    target = {"project_id": ctx.project_id}
    svc.policy.enforce_target(ctx, "tasks_api_access", target)
    svc.policy.enforce_target(ctx, rule, target)


def _time(value: str | None) -> str | None:
    return common.isotime(value)


def view(task: dict, full: bool = True) -> dict:
    """Glance's task serialisation (a stub in lists, without input/result/message)."""
    out = {
        "id": task["id"],
        "type": task["type"],
        "status": task["status"],
        "owner": task["owner"],
        "created_at": _time(task["created_at"]),
        "updated_at": _time(task["updated_at"]),
        "self": f"/v2/tasks/{task['id']}",
        "schema": "/v2/schemas/task",
    }
    if task.get("expires_at"):
        out["expires_at"] = _time(task["expires_at"])
    if full:
        out["input"] = task.get("input") or {}
        out["result"] = task.get("result")
        out["message"] = task.get("message") or ""
        for key in ("image_id", "request_id", "user_id"):
            if task.get(key):
                out[key] = task[key]
    return out


def show(req: webob.Request, svc: Services, ctx: RequestContext, task_id: str) -> webob.Response:
    _enforce(svc, ctx, "get_task")
    return common.json_response(view(svc.data.task_get(ctx, task_id)))


def index(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    _enforce(svc, ctx, "get_tasks")
    params = req.GET
    filters = {}
    for key, allowed in (("status", STATUSES), ("type", ("import",))):
        if key in params:
            if params[key] not in allowed:
                raise exceptions.BadRequest(f"Invalid {key} value: {params[key]}")
            filters[key] = params[key]
    sort_key = params.get("sort_key", "created_at")
    sort_dir = params.get("sort_dir", "desc")
    if sort_key not in SORT_KEYS:
        raise exceptions.BadRequest(f"Invalid sort_key value: {sort_key}")
    if sort_dir not in ("asc", "desc"):
        raise exceptions.BadRequest(f"Invalid sort direction: {sort_dir}")
    marker = params.get("marker")
    if marker is not None:
        try:
            uuid.UUID(marker)
        except ValueError:
            raise exceptions.BadRequest("Invalid marker format: it must be a task id.") from None
    limit = limit_param(params.get("limit"), svc.conf.limit_param_default, svc.conf.api_limit_max)
    tasks = svc.data.task_get_all(
        ctx, filters=filters, marker=marker, limit=limit, sort_key=sort_key, sort_dir=sort_dir
    )
    others = [(k, v) for k, v in params.items() if k != "marker"]
    body: dict = {
        "tasks": [view(t, full=False) for t in tasks],
        "first": "/v2/tasks",
        "schema": "/v2/schemas/tasks",
    }
    if others:
        body["first"] += "?" + urllib.parse.urlencode(others)
    if tasks and len(tasks) == limit:
        body["next"] = "/v2/tasks?" + urllib.parse.urlencode(others + [("marker", tasks[-1]["id"])])
    return common.json_response(body)


def create(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    body = common.read_json(req)
    _enforce(svc, ctx, "add_task")
    if not isinstance(body, dict):
        raise exceptions.BadRequest("The task must be a JSON object.")
    unknown = set(body) - {"type", "input"}
    if unknown:
        raise exceptions.BadRequest(f"Attribute(s) {', '.join(sorted(unknown))} may not be set on a task.")
    if body.get("type") != "import":
        raise exceptions.BadRequest("Task type must be 'import'.")
    task_input = body.get("input")
    if not isinstance(task_input, dict):
        raise exceptions.BadRequest("Task 'input' must be an object.")
    for key in ("import_from", "import_from_format", "image_properties"):
        if key not in task_input:
            raise exceptions.BadRequest(f"Input does not contain '{key}' field.")
    if not isinstance(task_input["image_properties"], dict):
        raise exceptions.BadRequest("'image_properties' must be an object.")
    if not import_options.uri_allowed(svc.conf, task_input["import_from"]):
        raise exceptions.BadRequest(
            f"URI for import_from does not pass filtering: {task_input['import_from']}"
        )
    task = _start_legacy_import(svc, ctx, task_input)
    resp = common.json_response(view(task), status=201)
    resp.headers["Location"] = req.host_url + f"/v2/tasks/{task['id']}"
    return resp


def _start_legacy_import(svc: Services, ctx: RequestContext, task_input: dict) -> dict:
    """A new queued image from ``image_properties``, imported like web-download."""
    from glance_service.api import images as images_api
    from glance_service.api.imports import start
    from glance_service.images import states

    props = dict(task_input["image_properties"])
    props.setdefault("disk_format", task_input["import_from_format"])
    props.setdefault("container_format", "bare")
    values = images_api._create_values(props, svc)
    values["owner"] = ctx.project_id
    values.setdefault("visibility", "shared")
    values["status"] = states.QUEUED
    image = svc.data.image_create(ctx, values)
    notifications.of(svc).image("image.create", image)
    stored_input = {**task_input, "image_id": image["id"], "backend": None}
    if svc.stores.enabled:
        stored_input["backend"] = [svc.stores.default_backend]
    try:
        return start(
            svc,
            ctx,
            image,
            "import",
            stored_input,
            {
                "status": states.IMPORTING,
                "properties": {import_tasks.WORKER: process.host_marker()},
            },
            states.QUEUED,
        )
    except BaseException:
        import_tasks.quietly(svc.data.image_destroy, ctx, image["id"])
        raise


# -- schemas -------------------------------------------------------------------------------
def task_schema() -> dict:
    return {
        "name": "task",
        "properties": {
            "id": {
                "description": "An identifier for the task",
                "type": "string",
                "pattern": _UUID_PATTERN,
            },
            "type": {
                "description": "The type of task represented by this content",
                "type": "string",
                "enum": list(TYPES),
            },
            "status": {
                "description": "The current status of this task",
                "type": "string",
                "enum": list(STATUSES),
            },
            "input": {
                "description": "The parameters required by task, JSON blob",
                "type": ["null", "object"],
            },
            "result": {"description": "The result of current task, JSON blob", "type": ["null", "object"]},
            "owner": {"description": "An identifier for the owner of this task", "type": "string"},
            "message": {
                "description": "Human-readable informative message only included when appropriate "
                "(usually on failure)",
                "type": "string",
            },
            "image_id": {"description": "Image associated with the task", "type": "string"},
            "request_id": {"description": "Human-readable informative request-id", "type": "string"},
            "user_id": {"description": "User associated with the task", "type": "string"},
            "expires_at": {
                "description": "Datetime when this resource would be subject to removal",
                "type": ["null", "string"],
            },
            "created_at": {"description": "Datetime when this resource was created", "type": "string"},
            "updated_at": {"description": "Datetime when this resource was updated", "type": "string"},
            "self": {"type": "string"},
            "schema": {"type": "string"},
        },
        "required": ["type", "input"],
        "links": [{"rel": "self", "href": "{self}"}, {"rel": "describedby", "href": "{schema}"}],
    }


def tasks_schema() -> dict:
    return paged_collection("tasks", task_schema())


def schema(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    return common.json_response(task_schema())


def collection_schema(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    return common.json_response(tasks_schema())
