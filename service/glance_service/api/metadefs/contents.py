"""A namespace's properties, objects and tags: ``/v2/metadefs/namespaces/{ns}/{kind}[/{name}]``."""

from __future__ import annotations

import webob

from glance_service import exceptions
from glance_service.api.common import json_response, no_content, read_json
from glance_service.api.metadefs import views
from glance_service.api.metadefs.namespaces import check_read_only, visible_namespace
from glance_service.api.wiring import Services
from glance_service.common import notifications
from glance_service.context import RequestContext
from glance_service.images import metadef_schema


def _not_found(kind: str, name: str, namespace: str) -> exceptions.NotFound:
    return exceptions.NotFound(f"Metadata definition {kind}={name} not found in namespace={namespace}.")


# The handlers that differ only by kind (property, object, tag), its policy rule and its view
# are made here; each takes the namespace and, for one item, the item's name (``<kind>_name``).
def _creator(kind: str, rule: str, view, check: bool = True):
    def create(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
        body = read_json(req)
        visible_namespace(svc, ctx, namespace, rule)
        if check:
            check_read_only(body)
        created = svc.data.metadef_item_create(ctx, namespace, kind, metadef_schema.validate(kind, body))
        notifications.of(svc).metadef_item("create", kind, namespace, created)
        return json_response(view(namespace, created), status=201)

    return create


def _finder(kind: str, rule: str, view):
    def show(
        req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, **named
    ) -> webob.Response:
        (name,) = named.values()
        record = visible_namespace(svc, ctx, namespace, rule)
        for found in record.get(f"{kind}s") or []:
            if found["name"] == name:
                return json_response(view(namespace, found))
        raise _not_found(kind, name, namespace)

    return show


def _updater(kind: str, rule: str, view, check: bool = True):
    def update(
        req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, **named
    ) -> webob.Response:
        (name,) = named.values()
        body = read_json(req)
        visible_namespace(svc, ctx, namespace, rule)
        if check:
            check_read_only(body)
        values = metadef_schema.validate(kind, body)
        updated = svc.data.metadef_item_update(ctx, namespace, kind, name, values)
        notifications.of(svc).metadef_item("update", kind, namespace, updated, old=name)
        return json_response(view(namespace, updated))

    return update


def _deleter(kind: str, rule: str):
    """DELETE of one item (its name in the URL) or, without a name, of every item of ``kind``."""

    def delete(
        req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, **named
    ) -> webob.Response:
        record = visible_namespace(svc, ctx, namespace, rule)
        svc.data.metadef_item_delete(ctx, namespace, kind, *named.values())
        _notify_deleted(svc, record, kind, *named.values())
        return no_content()

    return delete


def _notify_deleted(svc: Services, record: dict, kind: str, name: str | None = None) -> None:
    """``metadef_<kind>.delete``, or without a name upstream's ``metadef_namespace.delete_<kind>s``."""
    events = notifications.of(svc)
    if name is None:
        events.metadef(f"metadef_namespace.delete_{kind}s", notifications.metadef_namespace_payload, record)
        return
    items = record.get(f"{kind}s") or []
    if isinstance(items, dict):  # properties: {name: schema}
        items = [{"name": key, **value} for key, value in items.items()]
    found = next((item for item in items if item.get("name") == name), {"name": name})
    events.metadef_item("delete", kind, record["namespace"], found)


def _prop_view(namespace: str, record: dict) -> dict:
    return views.prop(record)


def _tag_view(namespace: str, record: dict) -> dict:
    return views.tag(record)


# -- properties ----------------------------------------------------------------------------------
def list_properties(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "get_metadef_properties")
    return json_response({"properties": views.properties(record.get("properties") or {})})


create_property = _creator("property", "add_metadef_property", _prop_view, check=False)
update_property = _updater("property", "modify_metadef_property", _prop_view, check=False)
delete_property = delete_properties = _deleter("property", "remove_metadef_property")


def show_property(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, property_name: str
) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "get_metadef_property")
    found = (record.get("properties") or {}).get(property_name)
    if found is None:
        raise _not_found("property", property_name, namespace)
    return json_response(views.prop({"name": property_name, **found}))


# -- objects ---------------------------------------------------------------------------------------
def list_objects(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "get_metadef_objects")
    objects = [views.obj(namespace, o) for o in record.get("objects") or []]
    return json_response({"objects": objects, "schema": "/v2/schemas/metadefs/objects"})


create_object = _creator("object", "add_metadef_object", views.obj)
show_object = _finder("object", "get_metadef_object", views.obj)
update_object = _updater("object", "modify_metadef_object", views.obj)
delete_object = delete_objects = _deleter("object", "delete_metadef_object")


# -- tags --------------------------------------------------------------------------------------------
def list_tags(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "get_metadef_tags")
    return json_response({"tags": [views.tag(t) for t in record.get("tags") or []]})


def create_tags(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    body = read_json(req)
    visible_namespace(svc, ctx, namespace, "add_metadef_tags")
    if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
        raise exceptions.BadRequest('The body must be {"tags": [{"name": "..."}, ...]}')
    names = []
    for item in body["tags"]:
        metadef_schema.validate("tag", item)
        names.append(item["name"])
    # X-Openstack-Append: true adds to the namespace's tags instead of replacing them.
    append = req.headers.get("X-Openstack-Append", "").strip().lower() == "true"
    created = svc.data.metadef_tags_set(ctx, namespace, names, append=append)
    for tag in created:
        notifications.of(svc).metadef_item("create", "tag", namespace, tag)
    return json_response({"tags": [views.tag(t) for t in created]}, status=201)


def create_tag(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, tag_name: str
) -> webob.Response:
    # The name is in the URL; a body is optional, but it must be JSON (Glance's deserializer).
    read_json(req, required=False)
    visible_namespace(svc, ctx, namespace, "add_metadef_tag")
    created = svc.data.metadef_item_create(ctx, namespace, "tag", {"name": tag_name})
    notifications.of(svc).metadef_item("create", "tag", namespace, created)
    return json_response(views.tag(created), status=201)


show_tag = _finder("tag", "get_metadef_tag", _tag_view)
update_tag = _updater("tag", "modify_metadef_tag", _tag_view)
delete_tag = _deleter("tag", "delete_metadef_tag")
delete_tags = _deleter("tag", "delete_metadef_tags")
