"""``/v2/metadefs/namespaces[/{ns}]``, resource types and their associations."""

from __future__ import annotations

import urllib.parse

import webob

from glance_service import exceptions
from glance_service.api.common import json_response, no_content, read_json
from glance_service.api.metadefs import views
from glance_service.api.wiring import Services
from glance_service.common import notifications
from glance_service.context import RequestContext
from glance_service.images import metadef_policy, metadef_schema
from glance_service.images.filters import limit_param

# Glance answers 403 when a client sends these (they are the server's to set).
READ_ONLY = ("self", "schema", "created_at", "updated_at")
_SORT_KEYS = ("created_at", "updated_at", "namespace", "id")
_NAMESPACE_FIELDS = ("namespace", "display_name", "description", "visibility", "protected", "owner")


def check_read_only(body: object) -> None:
    if isinstance(body, dict):
        for key in READ_ONLY:
            if key in body:
                raise exceptions.ReadOnlyProperty(f"Attribute '{key}' is read-only.")


def visible_namespace(svc: Services, ctx: RequestContext, namespace: str, rule: str) -> dict:
    """The namespace if ``ctx`` may apply ``rule`` to it (404 if it may not even read it, else 403)."""
    record = svc.data.metadef_namespace_get(ctx, namespace)
    metadef_policy.enforce(svc.policy, ctx, rule, record)
    return record


# -- list, create -----------------------------------------------------------------------------
def _list_query(req: webob.Request, svc: Services) -> dict:
    params = req.GET
    limit = limit_param(params.get("limit"), svc.conf.limit_param_default)
    sort_key = params.get("sort_key", "created_at")
    if sort_key not in _SORT_KEYS:
        raise exceptions.InvalidSortKey(
            f"Invalid sort key: {sort_key}. Must be one of {', '.join(_SORT_KEYS)}"
        )
    sort_dir = params.get("sort_dir", "desc")
    if sort_dir not in ("asc", "desc"):
        raise exceptions.BadRequest(f"Invalid sort direction: {sort_dir}")
    filters: dict = {}
    visibility = params.get("visibility")
    if visibility is not None:
        if visibility not in ("public", "private"):
            raise exceptions.BadRequest(f"Invalid visibility value: {visibility}")
        filters["visibility"] = visibility
    if params.get("resource_types"):
        filters["resource_types"] = [t.strip() for t in params["resource_types"].split(",") if t.strip()]
    return {
        "filters": filters,
        "marker": params.get("marker"),
        "limit": min(limit, svc.conf.api_limit_max),
        "sort_key": sort_key,
        "sort_dir": sort_dir,
    }


def index(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    metadef_policy.enforce_collection(svc.policy, ctx, "get_metadef_namespaces")
    query = _list_query(req, svc)
    found = svc.data.metadef_namespace_get_all(ctx, **query)
    shown = [
        ns
        for ns in found
        if metadef_policy.check(svc.policy, ctx, "get_metadef_namespace", metadef_policy.namespace_target(ns))
    ]
    params = [(k, v) for k, v in req.GET.items() if k != "marker"]
    body: dict = {
        "namespaces": [views.namespace(ns) for ns in shown],
        "first": views.NS_PATH + ("?" + urllib.parse.urlencode(params) if params else ""),
        "schema": "/v2/schemas/metadefs/namespaces",
    }
    if found and len(found) == query["limit"]:
        body["next"] = (
            views.NS_PATH + "?" + urllib.parse.urlencode(params + [("marker", found[-1]["namespace"])])
        )
    return json_response(body)


def create(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    body = read_json(req)
    metadef_policy.enforce_collection(svc.policy, ctx, "add_metadef_namespace")
    check_read_only(body)
    values = dict(metadef_schema.validate("namespace", body))
    if not values.get("owner"):
        values["owner"] = ctx.project_id
    record = svc.data.metadef_namespace_create(ctx, values)
    notifications.of(svc).metadef("metadef_namespace.create", notifications.metadef_namespace_payload, record)
    resp = json_response(views.namespace(record), status=201)
    resp.headers["Location"] = req.host_url + views.NS_PATH + "/" + views.quote(record["namespace"])
    return resp


# -- one namespace ------------------------------------------------------------------------------
def show(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "get_metadef_namespace")
    prefix = ""
    wanted = req.GET.get("resource_type")
    if wanted:
        # Property names as that resource type sees them (e.g. hw: for flavors, hw_ for images).
        for association in record.get("resource_type_associations") or []:
            if association["name"] == wanted:
                prefix = association.get("prefix") or ""
    return json_response(views.namespace(record, prefix))


def update(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    body = read_json(req)
    visible_namespace(svc, ctx, namespace, "modify_metadef_namespace")
    check_read_only(body)
    metadef_schema.validate("namespace", body)
    values = {key: body[key] for key in _NAMESPACE_FIELDS if key in body}
    updated = svc.data.metadef_namespace_update(ctx, namespace, values)
    notifications.of(svc).metadef(
        "metadef_namespace.update",
        notifications.metadef_namespace_payload,
        updated,
        extra={"namespace_old": namespace},
    )
    return json_response(views.namespace(updated))


def delete(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "delete_metadef_namespace")
    svc.data.metadef_namespace_delete(ctx, namespace)
    notifications.of(svc).metadef("metadef_namespace.delete", notifications.metadef_namespace_payload, record)
    return no_content()


# -- resource types -------------------------------------------------------------------------------
def resource_types(req: webob.Request, svc: Services, ctx: RequestContext) -> webob.Response:
    metadef_policy.enforce_collection(svc.policy, ctx, "list_metadef_resource_types")
    return json_response(
        {"resource_types": [views.tag(t) for t in svc.data.metadef_resource_type_get_all(ctx)]}
    )


def associations(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "get_metadef_resource_type")
    found = record.get("resource_type_associations") or []
    return json_response({"resource_type_associations": [views.association(a) for a in found]})


def associate(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    body = read_json(req)
    visible_namespace(svc, ctx, namespace, "add_metadef_resource_type_association")
    check_read_only(body)
    values = metadef_schema.validate("resource_type", body)
    created = svc.data.metadef_association_create(ctx, namespace, values)
    notifications.of(svc).metadef(
        "metadef_resource_type.create", notifications.metadef_resource_type_payload, namespace, created
    )
    return json_response(views.association(created), status=201)


def dissociate(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, resource_type: str
) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "remove_metadef_resource_type_association")
    svc.data.metadef_association_delete(ctx, namespace, resource_type)
    found = [a for a in record.get("resource_type_associations") or [] if a.get("name") == resource_type]
    notifications.of(svc).metadef(
        "metadef_resource_type.delete",
        notifications.metadef_resource_type_payload,
        namespace,
        found[0] if found else {"name": resource_type},
    )
    return no_content()
