"""Every /v2/metadefs endpoint over raw HTTP: codes, bodies, policies (admin writes, readers read
public or own namespaces, invisible → 404), and the metadef schemas."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.functional.conftest import Http

NS = "/v2/metadefs/namespaces"
GLANCE_MANAGE = Path(sys.executable).parent / "glance-manage"


def _name() -> str:
    return "Test::" + uuid.uuid4().hex[:10]


@pytest.fixture
def reader(glance) -> Http:
    return Http(glance.api_url, roles="reader")


@pytest.fixture
def ns(admin) -> str:
    """A private namespace of the admin's project, with one of each kind of content."""
    name = _name()
    body = {
        "namespace": name,
        "display_name": "Test",
        "description": "for tests",
        "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
        "properties": {"cpu": {"title": "CPU", "type": "string", "enum": ["a", "b"]}},
        "objects": [{"name": "obj", "properties": {"x": {"title": "X", "type": "integer"}}}],
        "tags": [{"name": "t1"}],
    }
    resp = admin.post(NS, json=body)
    assert resp.status_code == 201, resp.text
    return name


# -- schemas -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, name",
    [
        ("namespace", "namespace"),
        ("namespaces", "namespaces"),
        ("resource_type", "resource_type_association"),
        ("resource_types", "resource_type_associations"),
        ("property", "property"),
        ("properties", "properties"),
        ("object", "object"),
        ("objects", "objects"),
        ("tag", "tag"),
        ("tags", "tags"),
    ],
)
def test_schemas(http, path, name):
    resp = http.get(f"/v2/schemas/metadefs/{path}")
    assert resp.status_code == 200 and resp.json()["name"] == name


# -- resource types ------------------------------------------------------------------------------
def test_load_metadefs_then_resource_types(glance, reader):
    run = subprocess.run(
        [str(GLANCE_MANAGE), "--config-file", str(glance.registry_conf), "db", "load_metadefs"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    resp = reader.get("/v2/metadefs/resource_types")
    assert resp.status_code == 200
    names = {r["name"] for r in resp.json()["resource_types"]}
    assert {"OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Server"} <= names
    assert all(r["created_at"].endswith("Z") for r in resp.json()["resource_types"])
    # the standard namespaces are public: a reader of any project sees them
    shown = reader.get(NS + "/OS::Compute::CPUPinning", params={"resource_type": "OS::Nova::Flavor"})
    assert shown.status_code == 200 and "hw:cpu_policy" in shown.json()["properties"]
    assert reader.delete(NS + "/OS::Compute::CPUPinning").status_code == 403


# -- namespaces ----------------------------------------------------------------------------------
def test_namespace_create_show_update_delete(admin):
    name = _name()
    resp = admin.post(NS, json={"namespace": name, "description": "d"})
    assert resp.status_code == 201
    assert resp.headers["Location"] == f"{admin.base_url}{NS}/{name}"
    body = resp.json()
    assert body["visibility"] == "private" and body["protected"] is False and body["owner"] == admin.project
    assert body["self"] == f"{NS}/{name}" and body["schema"] == "/v2/schemas/metadefs/namespace"
    assert admin.post(NS, json={"namespace": name}).status_code == 409
    assert admin.get(f"{NS}/{name}").json()["description"] == "d"
    new = name + "-renamed"
    put = admin.put(f"{NS}/{name}", json={"namespace": new, "visibility": "public"})
    assert put.status_code == 200 and put.json()["namespace"] == new and put.json()["visibility"] == "public"
    assert admin.get(f"{NS}/{name}").status_code == 404
    assert admin.delete(f"{NS}/{new}").status_code == 204
    assert admin.get(f"{NS}/{new}").status_code == 404
    assert admin.delete(f"{NS}/{new}").status_code == 404


def test_namespace_show_has_contents(admin, ns):
    body = admin.get(f"{NS}/{ns}").json()
    assert body["properties"] == {"cpu": {"title": "CPU", "type": "string", "enum": ["a", "b"]}}
    assert body["objects"][0]["name"] == "obj" and body["tags"][0]["name"] == "t1"
    # upstream Glance 33: a tag is its name only here, an object's required list is always shown
    assert body["tags"] == [{"name": "t1"}] and isinstance(body["objects"][0]["required"], list)
    assert body["resource_type_associations"][0]["prefix"] == "hw_"
    prefixed = admin.get(f"{NS}/{ns}", params={"resource_type": "OS::Glance::Image"}).json()
    assert set(prefixed["properties"]) == {"hw_cpu"}


def test_protected_namespace_delete_403(admin):
    name = _name()
    assert (
        admin.post(NS, json={"namespace": name, "protected": True, "tags": [{"name": "x"}]}).status_code
        == 201
    )
    assert admin.delete(f"{NS}/{name}").status_code == 403
    assert admin.delete(f"{NS}/{name}/tags/x").status_code == 403
    assert admin.delete(f"{NS}/{name}/tags").status_code == 403
    assert admin.put(f"{NS}/{name}", json={"namespace": name, "protected": False}).status_code == 200
    assert admin.delete(f"{NS}/{name}").status_code == 204


@pytest.mark.parametrize(
    "body, code",
    [
        ({}, 400),
        ({"namespace": "x" * 81}, 400),
        ({"namespace": "v", "visibility": "shared"}, 400),
        ({"namespace": "v", "unknown": 1}, 400),
        ({"namespace": "v", "self": "/x"}, 403),
        ({"namespace": "v", "created_at": "2020-01-01T00:00:00Z"}, 403),
        ({"namespace": "v", "properties": {"p": {"type": "string"}}}, 400),
    ],
)
def test_namespace_bad_bodies(admin, body, code):
    assert admin.post(NS, json=body).status_code == code


def test_bad_json_and_body_on_get(admin, ns):
    assert admin.post(NS, data=b"{nope", headers={"Content-Type": "application/json"}).status_code == 400
    assert admin.request("GET", f"{NS}/{ns}", data=b"{}").status_code == 400


def test_method_not_allowed(admin, ns):
    resp = admin.request("PATCH", f"{NS}/{ns}")
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, PUT, DELETE"


# -- policies --------------------------------------------------------------------------------------
def test_writes_are_admin_only(http, admin, ns):
    """A project member (not admin): 403 on everything it can see, 404 on what it cannot."""
    public = _name()
    assert admin.post(NS, json={"namespace": public, "visibility": "public"}).status_code == 201
    assert http.post(NS, json={"namespace": _name()}).status_code == 403
    assert http.put(f"{NS}/{public}", json={"namespace": public}).status_code == 403
    assert http.delete(f"{NS}/{public}").status_code == 403
    assert http.post(f"{NS}/{public}/tags/x").status_code == 403
    assert (
        http.post(f"{NS}/{public}/properties", json={"name": "p", "title": "P", "type": "string"}).status_code
        == 403
    )
    # the admin's private namespace does not exist for the member
    assert http.get(f"{NS}/{ns}").status_code == 404
    assert http.delete(f"{NS}/{ns}").status_code == 404
    assert http.get(f"{NS}/{ns}/properties").status_code == 404


def test_reader_sees_public_and_own(glance, admin):
    project = uuid.uuid4().hex
    own, public, other = _name(), _name(), _name()
    assert admin.post(NS, json={"namespace": own, "owner": project}).status_code == 201
    assert admin.post(NS, json={"namespace": public, "visibility": "public"}).status_code == 201
    assert admin.post(NS, json={"namespace": other}).status_code == 201
    reader = Http(glance.api_url, project=project, roles="reader")
    listed = {n["namespace"] for n in reader.get(NS, params={"limit": 1000}).json()["namespaces"]}
    assert own in listed and public in listed and other not in listed
    assert reader.get(f"{NS}/{own}").status_code == 200
    assert reader.get(f"{NS}/{public}/tags").status_code == 200
    assert reader.get(f"{NS}/{other}").status_code == 404
    nobody = Http(glance.api_url, project=project, roles="")
    assert nobody.get(NS).status_code == 403
    assert nobody.get(f"{NS}/{public}").status_code == 404


# -- list parameters ----------------------------------------------------------------------------
def test_list_paging_filters_and_sorting(admin):
    rt = "Test::Type::" + uuid.uuid4().hex[:6]
    names = sorted(_name() for _ in range(3))
    for n in names:
        body = {"namespace": n, "visibility": "public", "resource_type_associations": [{"name": rt}]}
        assert admin.post(NS, json=body).status_code == 201
    params = {"resource_types": rt, "sort_key": "namespace", "sort_dir": "asc", "limit": 2}
    first = admin.get(NS, params=params)
    assert first.status_code == 200
    body = first.json()
    assert [n["namespace"] for n in body["namespaces"]] == names[:2]
    assert body["schema"] == "/v2/schemas/metadefs/namespaces" and "marker=" in body["next"]
    second = admin.get(body["next"]).json()
    assert [n["namespace"] for n in second["namespaces"]] == names[2:]
    assert "next" not in second
    private = admin.get(NS, params={"resource_types": rt, "visibility": "private"}).json()
    assert private["namespaces"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "-1"},
        {"limit": "x"},
        {"sort_key": "owner"},
        {"sort_dir": "up"},
        {"visibility": "shared"},
        {"marker": "nope"},
    ],
)
def test_list_bad_params_400(admin, params):
    assert admin.get(NS, params=params).status_code == 400


# -- resource type associations -------------------------------------------------------------------
def test_associations(admin, reader, ns):
    base = f"{NS}/{ns}/resource_types"
    resp = admin.post(base, json={"name": "OS::Nova::Flavor", "prefix": "hw:"})
    assert resp.status_code == 201
    assert resp.json()["name"] == "OS::Nova::Flavor" and resp.json()["prefix"] == "hw:"
    assert admin.post(base, json={"name": "OS::Nova::Flavor"}).status_code == 409
    listed = admin.get(base).json()["resource_type_associations"]
    assert {a["name"] for a in listed} == {"OS::Glance::Image", "OS::Nova::Flavor"}
    assert admin.post(base, json={"prefix": "x"}).status_code == 400
    assert admin.delete(f"{base}/OS::Nova::Flavor").status_code == 204
    assert admin.delete(f"{base}/OS::Nova::Flavor").status_code == 404
    assert reader.get(base).status_code == 404


# -- properties -----------------------------------------------------------------------------------
def test_properties(admin, ns):
    base = f"{NS}/{ns}/properties"
    body = {"name": "ram", "title": "RAM", "type": "integer", "minimum": 0}
    created = admin.post(base, json=body)
    assert created.status_code == 201 and created.json() == body
    assert admin.post(base, json=body).status_code == 409
    assert admin.post(base, json={"name": "x", "type": "string"}).status_code == 400
    assert admin.post(base, json={"name": "x", "title": "X", "type": "nonsense"}).status_code == 400
    assert set(admin.get(base).json()["properties"]) == {"cpu", "ram"}
    assert admin.get(f"{base}/ram").json() == body
    updated = admin.put(f"{base}/ram", json={"name": "memory", "title": "Memory", "type": "integer"})
    assert updated.status_code == 200 and updated.json()["name"] == "memory"
    assert admin.get(f"{base}/ram").status_code == 404
    assert (
        admin.put(f"{base}/memory", json={"name": "cpu", "title": "C", "type": "string"}).status_code == 409
    )
    assert admin.delete(f"{base}/memory").status_code == 204
    assert admin.delete(f"{base}/memory").status_code == 404
    assert admin.delete(base).status_code == 204
    assert admin.get(base).json() == {"properties": {}}


def test_namespace_shows_each_property_as_stored(admin, ns):
    """Upstream keeps a property's JSON as the client sent it: one added through the properties
    API carries its name in the namespace's view, an inline one of the namespace's body not
    (seen when molecule/adopt's CLI-made namespace was compared after adoption)."""
    body = {"name": "ram", "title": "RAM", "type": "integer", "minimum": 0}
    assert admin.post(f"{NS}/{ns}/properties", json=body).status_code == 201
    shown = admin.get(f"{NS}/{ns}").json()["properties"]
    assert shown["ram"] == body
    assert shown["cpu"] == {"title": "CPU", "type": "string", "enum": ["a", "b"]}
    assert admin.get(f"{NS}/{ns}/properties/ram").json() == body
    assert admin.get(f"{NS}/{ns}/properties/cpu").json()["name"] == "cpu"


# -- objects ---------------------------------------------------------------------------------------
def test_objects(admin, ns):
    base = f"{NS}/{ns}/objects"
    body = {
        "name": "Web",
        "description": "d",
        "required": ["port"],
        "properties": {"port": {"title": "P", "type": "integer"}},
    }
    created = admin.post(base, json=body)
    assert created.status_code == 201
    obj = created.json()
    assert obj["self"] == f"{base}/Web" and obj["schema"] == "/v2/schemas/metadefs/object"
    assert obj["required"] == ["port"] and obj["created_at"].endswith("Z")
    assert admin.post(base, json=body).status_code == 409
    assert admin.post(base, json={"description": "no name"}).status_code == 400
    listed = admin.get(base).json()
    assert {o["name"] for o in listed["objects"]} == {"obj", "Web"} and listed[
        "schema"
    ] == "/v2/schemas/metadefs/objects"
    assert admin.get(f"{base}/Web").json()["properties"]["port"]["type"] == "integer"
    put = admin.put(f"{base}/Web", json={"name": "Web", "description": "changed"})
    assert put.status_code == 200 and put.json()["description"] == "changed"
    assert admin.delete(f"{base}/Web").status_code == 204
    assert admin.get(f"{base}/Web").status_code == 404
    assert admin.delete(base).status_code == 204
    assert admin.get(base).json()["objects"] == []


# -- tags --------------------------------------------------------------------------------------------
def test_tags(admin, ns):
    base = f"{NS}/{ns}/tags"
    replaced = admin.post(base, json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert replaced.status_code == 201 and [t["name"] for t in replaced.json()["tags"]] == ["a", "b"]
    assert [t["name"] for t in admin.get(base).json()["tags"]] == ["a", "b"]
    appended = admin.post(base, json={"tags": [{"name": "c"}]}, headers={"X-Openstack-Append": "True"})
    assert appended.status_code == 201
    assert [t["name"] for t in admin.get(base).json()["tags"]] == ["a", "b", "c"]
    assert (
        admin.post(base, json={"tags": [{"name": "a"}]}, headers={"X-Openstack-Append": "true"}).status_code
        == 409
    )
    assert admin.post(base, json={"tags": [{"name": "d"}, {"name": "d"}]}).status_code == 409
    assert admin.post(base, json={"tags": "nope"}).status_code == 400
    one = admin.post(f"{base}/single")
    assert one.status_code == 201 and one.json()["name"] == "single"
    assert admin.post(f"{base}/single").status_code == 409
    assert admin.get(f"{base}/single").json()["name"] == "single"
    renamed = admin.put(f"{base}/single", json={"name": "double"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "double"
    assert admin.get(f"{base}/single").status_code == 404
    assert admin.delete(f"{base}/double").status_code == 204
    assert admin.delete(f"{base}/double").status_code == 404
    assert admin.delete(base).status_code == 204
    assert admin.get(base).json() == {"tags": []}
