"""Metadef data functions (db/metadefs.py) and the standard-definitions loader, on both backends."""

from __future__ import annotations

import json

import pytest

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.db import metadefs_loader


@pytest.fixture
def reader() -> RequestContext:
    return RequestContext(user_id="u-r", project_id="alpha", roles=["reader"])


def _ns(dbapi, admin, name, **values):
    return dbapi.metadef_namespace_create(admin, {"namespace": name, **values})


def test_create_defaults_and_whole_namespace(dbapi, admin):
    created = _ns(
        dbapi,
        admin,
        "N1",
        resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "hw_"}],
        properties={"p": {"title": "P", "type": "string", "enum": ["a", "b"]}},
        objects=[{"name": "o", "required": ["x"], "properties": {"x": {"title": "X", "type": "integer"}}}],
        tags=[{"name": "t1"}, {"name": "t2"}],
    )
    assert created["visibility"] == "private" and created["protected"] is False
    assert created["owner"] == "admins"
    assert created["properties"] == {"p": {"title": "P", "type": "string", "enum": ["a", "b"]}}
    assert created["objects"][0]["required"] == ["x"]
    assert [t["name"] for t in created["tags"]] == ["t1", "t2"]
    assert created["resource_type_associations"][0]["prefix"] == "hw_"
    assert [r["name"] for r in dbapi.metadef_resource_type_get_all(admin)] == ["OS::Glance::Image"]
    with pytest.raises(exceptions.Duplicate):
        _ns(dbapi, admin, "N1")


def test_duplicate_item_in_create_rolls_back(dbapi, admin):
    with pytest.raises(exceptions.Duplicate):
        _ns(dbapi, admin, "N2", tags=[{"name": "x"}, {"name": "x"}])
    with pytest.raises(exceptions.NotFound):
        dbapi.metadef_namespace_get(admin, "N2")


def test_visibility(dbapi, admin, reader, bob):
    _ns(dbapi, admin, "private-admins")
    _ns(dbapi, admin, "public", visibility="public")
    _ns(dbapi, admin, "alpha-own", owner="alpha")
    names = {n["namespace"] for n in dbapi.metadef_namespace_get_all(reader)}
    assert names == {"public", "alpha-own"}
    with pytest.raises(exceptions.NotFound):
        dbapi.metadef_namespace_get(reader, "private-admins")
    with pytest.raises(exceptions.NotFound):
        dbapi.metadef_namespace_get(bob, "alpha-own")
    assert len(dbapi.metadef_namespace_get_all(admin)) == 3
    # writes on an invisible namespace are not found either
    with pytest.raises(exceptions.NotFound):
        dbapi.metadef_item_create(bob, "alpha-own", "tag", {"name": "x"})


def test_list_filters_sorting_and_marker(dbapi, admin):
    for i in range(5):
        rts = [{"name": "OS::Nova::Flavor"}] if i % 2 else []
        _ns(
            dbapi,
            admin,
            f"ns{i}",
            visibility="public" if i < 2 else "private",
            resource_type_associations=rts,
        )
    by_name = dbapi.metadef_namespace_get_all(admin, sort_key="namespace", sort_dir="asc")
    assert [n["namespace"] for n in by_name] == [f"ns{i}" for i in range(5)]
    page = dbapi.metadef_namespace_get_all(admin, sort_key="namespace", sort_dir="asc", marker="ns1", limit=2)
    assert [n["namespace"] for n in page] == ["ns2", "ns3"]
    public = dbapi.metadef_namespace_get_all(admin, filters={"visibility": "public"})
    assert {n["namespace"] for n in public} == {"ns0", "ns1"}
    flavors = dbapi.metadef_namespace_get_all(admin, filters={"resource_types": ["OS::Nova::Flavor"]})
    assert {n["namespace"] for n in flavors} == {"ns1", "ns3"}
    with pytest.raises(exceptions.BadRequest):
        dbapi.metadef_namespace_get_all(admin, marker="nope")
    with pytest.raises(exceptions.InvalidSortKey):
        dbapi.metadef_namespace_get_all(admin, sort_key="owner")


def test_items_create_update_rename_delete(dbapi, admin):
    _ns(dbapi, admin, "N")
    prop = dbapi.metadef_item_create(admin, "N", "property", {"name": "p", "title": "P", "type": "string"})
    assert prop == {"name": "p", "title": "P", "type": "string"}
    with pytest.raises(exceptions.Duplicate):
        dbapi.metadef_item_create(admin, "N", "property", {"name": "p", "title": "P", "type": "string"})
    renamed = dbapi.metadef_item_update(
        admin, "N", "property", "p", {"name": "q", "title": "Q", "type": "integer"}
    )
    assert renamed == {"name": "q", "title": "Q", "type": "integer"}
    dbapi.metadef_item_create(admin, "N", "property", {"name": "r", "title": "R", "type": "string"})
    with pytest.raises(exceptions.Duplicate):
        dbapi.metadef_item_update(admin, "N", "property", "r", {"name": "q", "title": "R", "type": "string"})
    with pytest.raises(exceptions.NotFound):
        dbapi.metadef_item_update(
            admin, "N", "property", "zzz", {"name": "zzz", "title": "Z", "type": "string"}
        )
    dbapi.metadef_item_delete(admin, "N", "property", "q")
    assert set(dbapi.metadef_namespace_get(admin, "N")["properties"]) == {"r"}
    with pytest.raises(exceptions.NotFound):
        dbapi.metadef_item_delete(admin, "N", "property", "q")
    dbapi.metadef_item_delete(admin, "N", "property")
    assert dbapi.metadef_namespace_get(admin, "N")["properties"] == {}
    with pytest.raises(exceptions.BadRequest):
        dbapi.metadef_item_create(admin, "N", "widget", {"name": "x"})


def test_protected_namespace_refuses_deletes(dbapi, admin):
    _ns(dbapi, admin, "P", protected=True, tags=[{"name": "t"}], resource_type_associations=[{"name": "RT"}])
    with pytest.raises(exceptions.Forbidden):
        dbapi.metadef_namespace_delete(admin, "P")
    with pytest.raises(exceptions.Forbidden):
        dbapi.metadef_item_delete(admin, "P", "tag", "t")
    with pytest.raises(exceptions.Forbidden):
        dbapi.metadef_association_delete(admin, "P", "RT")
    dbapi.metadef_namespace_update(admin, "P", {"protected": False})
    dbapi.metadef_namespace_delete(admin, "P")
    with pytest.raises(exceptions.NotFound):
        dbapi.metadef_namespace_get(admin, "P")


def test_tags_replace_and_append(dbapi, admin):
    _ns(dbapi, admin, "T", tags=[{"name": "old"}])
    assert [t["name"] for t in dbapi.metadef_tags_set(admin, "T", ["a", "b"])] == ["a", "b"]
    assert [t["name"] for t in dbapi.metadef_namespace_get(admin, "T")["tags"]] == ["a", "b"]
    dbapi.metadef_tags_set(admin, "T", ["c"], append=True)
    assert [t["name"] for t in dbapi.metadef_namespace_get(admin, "T")["tags"]] == ["a", "b", "c"]
    with pytest.raises(exceptions.Duplicate):
        dbapi.metadef_tags_set(admin, "T", ["a"], append=True)
    with pytest.raises(exceptions.Duplicate):
        dbapi.metadef_tags_set(admin, "T", ["x", "x"])
    # the failed replace changed nothing
    assert [t["name"] for t in dbapi.metadef_namespace_get(admin, "T")["tags"]] == ["a", "b", "c"]


def test_associations(dbapi, admin):
    _ns(dbapi, admin, "A")
    made = dbapi.metadef_association_create(
        admin, "A", {"name": "OS::Nova::Server", "properties_target": "metadata"}
    )
    assert made["name"] == "OS::Nova::Server" and made["properties_target"] == "metadata"
    with pytest.raises(exceptions.Duplicate):
        dbapi.metadef_association_create(admin, "A", {"name": "OS::Nova::Server"})
    dbapi.metadef_association_delete(admin, "A", "OS::Nova::Server")
    with pytest.raises(exceptions.NotFound):
        dbapi.metadef_association_delete(admin, "A", "OS::Nova::Server")
    # the resource type outlives its association
    assert [r["name"] for r in dbapi.metadef_resource_type_get_all(admin)] == ["OS::Nova::Server"]


def test_rename_namespace_conflict(dbapi, admin):
    _ns(dbapi, admin, "X")
    _ns(dbapi, admin, "Y")
    with pytest.raises(exceptions.Duplicate):
        dbapi.metadef_namespace_update(admin, "X", {"namespace": "Y"})
    assert dbapi.metadef_namespace_update(admin, "X", {"namespace": "Z"})["namespace"] == "Z"


# -- loader --------------------------------------------------------------------------------------
def test_standard_definitions_load_idempotently(dbapi, admin):
    first = metadefs_loader.load(dbapi)
    assert first["files"] >= 6 and first["created"] == first["files"]
    types = {r["name"] for r in dbapi.metadef_resource_type_get_all(admin)}
    assert {"OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Server"} <= types
    names = {n["namespace"] for n in dbapi.metadef_namespace_get_all(admin)}
    assert {"OS::Compute::CPUPinning", "OS::Compute::Watchdog", "OS::Compute::Hypervisor"} <= names
    before = dbapi.metadef_namespace_get(admin, "OS::Compute::CPUPinning")
    second = metadefs_loader.load(dbapi)
    assert second["created"] == 0 and second["unchanged"] == first["files"]
    assert dbapi.metadef_namespace_get(admin, "OS::Compute::CPUPinning") == before


def test_loader_completes_but_never_overwrites(dbapi, admin, tmp_path):
    doc = {
        "namespace": "Mine",
        "visibility": "public",
        "properties": {"a": {"title": "A", "type": "string"}, "b": {"title": "B", "type": "string"}},
        "tags": [{"name": "t"}],
    }
    (tmp_path / "mine.json").write_text(json.dumps(doc))
    metadefs_loader.load(dbapi, tmp_path)
    dbapi.metadef_item_update(
        admin, "Mine", "property", "a", {"name": "a", "title": "Edited", "type": "string"}
    )
    dbapi.metadef_item_delete(admin, "Mine", "property", "b")
    counts = metadefs_loader.load(dbapi, tmp_path)
    assert counts == {"files": 1, "created": 0, "updated": 1, "unchanged": 0, "items_added": 1}
    props = dbapi.metadef_namespace_get(admin, "Mine")["properties"]
    assert props["a"]["title"] == "Edited" and props["b"]["title"] == "B"


@pytest.mark.parametrize(
    "content", ["{not json", '{"display_name": "no namespace"}', '{"namespace": "x", "visibility": "odd"}']
)
def test_loader_names_the_bad_file(tmp_path, content):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(metadefs_loader.DefinitionError, match="bad.json"):
        metadefs_loader.read_definitions(tmp_path)
