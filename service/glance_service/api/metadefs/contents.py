"""A namespace's properties, objects and tags: ``/v2/metadefs/namespaces/{ns}/{kind}[/{name}]``."""

from __future__ import annotations

import webob

from glance_service import exceptions
from glance_service.api.common import json_response, no_content, read_json
from glance_service.api.metadefs import views
from glance_service.api.metadefs.namespaces import check_read_only, visible_namespace
from glance_service.api.wiring import Services
from glance_service.context import RequestContext
from glance_service.images import metadef_schema


def _not_found(kind: str, name: str, namespace: str) -> exceptions.NotFound:
    return exceptions.NotFound(f"Metadata definition {kind}={name} not found in namespace={namespace}.")


# -- properties ----------------------------------------------------------------------------------
def list_properties(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "get_metadef_properties")
    return json_response({"properties": views.properties(record.get("properties") or {})})


def create_property(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    body = read_json(req)
    visible_namespace(svc, ctx, namespace, "add_metadef_property")
    values = metadef_schema.validate("property", body)
    created = svc.data.metadef_item_create(ctx, namespace, "property", values)
    return json_response(views.prop(created), status=201)


def delete_properties(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str
) -> webob.Response:
    visible_namespace(svc, ctx, namespace, "remove_metadef_property")
    svc.data.metadef_item_delete(ctx, namespace, "property")
    return no_content()


def show_property(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, property_name: str
) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "get_metadef_property")
    found = (record.get("properties") or {}).get(property_name)
    if found is None:
        raise _not_found("property", property_name, namespace)
    return json_response(views.prop({"name": property_name, **found}))


def update_property(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, property_name: str
) -> webob.Response:
    body = read_json(req)
    visible_namespace(svc, ctx, namespace, "modify_metadef_property")
    values = metadef_schema.validate("property", body)
    updated = svc.data.metadef_item_update(ctx, namespace, "property", property_name, values)
    return json_response(views.prop(updated))


def delete_property(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, property_name: str
) -> webob.Response:
    visible_namespace(svc, ctx, namespace, "remove_metadef_property")
    svc.data.metadef_item_delete(ctx, namespace, "property", property_name)
    return no_content()


# -- objects ---------------------------------------------------------------------------------------
def list_objects(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "get_metadef_objects")
    objects = [views.obj(namespace, o) for o in record.get("objects") or []]
    return json_response({"objects": objects, "schema": "/v2/schemas/metadefs/objects"})


def create_object(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    body = read_json(req)
    visible_namespace(svc, ctx, namespace, "add_metadef_object")
    check_read_only(body)
    created = svc.data.metadef_item_create(ctx, namespace, "object", metadef_schema.validate("object", body))
    return json_response(views.obj(namespace, created), status=201)


def delete_objects(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    visible_namespace(svc, ctx, namespace, "delete_metadef_object")
    svc.data.metadef_item_delete(ctx, namespace, "object")
    return no_content()


def show_object(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, object_name: str
) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "get_metadef_object")
    for found in record.get("objects") or []:
        if found["name"] == object_name:
            return json_response(views.obj(namespace, found))
    raise _not_found("object", object_name, namespace)


def update_object(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, object_name: str
) -> webob.Response:
    body = read_json(req)
    visible_namespace(svc, ctx, namespace, "modify_metadef_object")
    check_read_only(body)
    values = metadef_schema.validate("object", body)
    updated = svc.data.metadef_item_update(ctx, namespace, "object", object_name, values)
    return json_response(views.obj(namespace, updated))


def delete_object(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, object_name: str
) -> webob.Response:
    visible_namespace(svc, ctx, namespace, "delete_metadef_object")
    svc.data.metadef_item_delete(ctx, namespace, "object", object_name)
    return no_content()


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
    return json_response({"tags": [views.tag(t) for t in created]}, status=201)


def delete_tags(req: webob.Request, svc: Services, ctx: RequestContext, namespace: str) -> webob.Response:
    visible_namespace(svc, ctx, namespace, "delete_metadef_tags")
    svc.data.metadef_item_delete(ctx, namespace, "tag")
    return no_content()


def show_tag(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, tag_name: str
) -> webob.Response:
    record = visible_namespace(svc, ctx, namespace, "get_metadef_tag")
    for found in record.get("tags") or []:
        if found["name"] == tag_name:
            return json_response(views.tag(found))
    raise _not_found("tag", tag_name, namespace)


def create_tag(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, tag_name: str
) -> webob.Response:
    # The name is in the URL; a body is optional, but it must be JSON (Glance's deserializer).
    read_json(req, required=False)
    visible_namespace(svc, ctx, namespace, "add_metadef_tag")
    created = svc.data.metadef_item_create(ctx, namespace, "tag", {"name": tag_name})
    return json_response(views.tag(created), status=201)


def update_tag(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, tag_name: str
) -> webob.Response:
    body = read_json(req)
    visible_namespace(svc, ctx, namespace, "modify_metadef_tag")
    check_read_only(body)
    values = metadef_schema.validate("tag", body)
    return json_response(views.tag(svc.data.metadef_item_update(ctx, namespace, "tag", tag_name, values)))


def delete_tag(
    req: webob.Request, svc: Services, ctx: RequestContext, namespace: str, tag_name: str
) -> webob.Response:
    visible_namespace(svc, ctx, namespace, "delete_metadef_tag")
    svc.data.metadef_item_delete(ctx, namespace, "tag", tag_name)
    return no_content()
