import pytest

from glance_service import exceptions
from glance_service.images import patch
from glance_service.images.image_schema import DEFAULT_CONTAINER_FORMATS, DEFAULT_DISK_FORMATS, ImageSchema

V20 = patch.MEDIA_V20
V21 = patch.MEDIA_V21
SCHEMA = ImageSchema(DEFAULT_DISK_FORMATS, DEFAULT_CONTAINER_FORMATS)


def image(**kw):
    base = {
        "id": "b2173dd3-7ad6-4362-baa6-a68bce3565cb",
        "name": "n",
        "status": "queued",
        "visibility": "shared",
        "protected": False,
        "os_hidden": False,
        "owner": "p1",
        "disk_format": None,
        "container_format": None,
        "min_disk": 0,
        "min_ram": 0,
        "properties": {"foo": "bar"},
        "tags": ["t"],
        "locations": [],
    }
    base.update(kw)
    return base


def v21(*ops):
    return patch.parse(V21, list(ops), SCHEMA)


# -- media types and syntax --------------------------------------------------------------


@pytest.mark.parametrize("ctype", [None, "application/json", "application/json-patch+json", "text/plain"])
def test_unsupported_media_type(ctype):
    with pytest.raises(exceptions.UnsupportedMediaType) as err:
        patch.parse(ctype, [], SCHEMA)
    assert err.value.code == 415
    assert err.value.accept_patch == (
        "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch"
    )


def test_both_media_types_parse_to_the_same_changes():
    a = patch.parse(
        V21, [{"op": "replace", "path": "/name", "value": "x"}, {"op": "remove", "path": "/foo"}], SCHEMA
    )
    b = patch.parse(V20, [{"replace": "/name", "value": "x"}, {"remove": "/foo"}], SCHEMA)
    assert [(c.op, c.path, c.value) for c in a] == [(c.op, c.path, c.value) for c in b]
    assert {c.draft for c in a} == {10} and {c.draft for c in b} == {4}


def test_media_type_parameters_are_ignored():
    assert patch.media_draft(V21 + "; charset=utf-8") == 10


@pytest.mark.parametrize(
    "ctype,body",
    [
        (V21, {"op": "add"}),
        (V21, ["add"]),
        (V21, [{"path": "/name", "value": "x"}]),
        (V21, [{"op": "move", "path": "/name", "value": "x"}]),
        (V21, [{"op": "add", "value": "x"}]),
        (V21, [{"op": "add", "path": "/name"}]),
        (V21, [{"op": "replace", "path": "/name"}]),
        (V20, [{"add": "/name", "replace": "/name", "value": "x"}]),
        (V20, [{"path": "/name", "value": "x"}]),
        (V20, [{"add": "/name"}]),
        (V21, [{"op": "add", "path": "name", "value": "x"}]),
        (V21, [{"op": "add", "path": "/a//b", "value": "x"}]),
        (V21, [{"op": "add", "path": "/name/", "value": "x"}]),
        (V21, [{"op": "add", "path": "/a~2b", "value": "x"}]),
        (V21, [{"op": "add", "path": "/a~", "value": "x"}]),
        (V21, [{"op": "add", "path": "/name/first", "value": "x"}]),
        (V21, [{"op": "add", "path": "/locations", "value": {"url": "http://a", "metadata": {}}}]),
        (V21, [{"op": "replace", "path": "/locations/0", "value": []}]),
        (V21, [{"op": "remove", "path": "/locations"}]),
        (V21, [{"op": "replace", "path": "/name", "value": "x" * 256}]),
        (V21, [{"op": "replace", "path": "/disk_format", "value": "floppy"}]),
        (V21, [{"op": "add", "path": "/foo", "value": 5}]),
        (V21, [{"op": "replace", "path": "/min_ram", "value": -1}]),
        (V21, [{"op": "replace", "path": "/min_disk", "value": 2**31}]),
        (V21, [{"op": "replace", "path": "/tags", "value": ["x" * 256]}]),
        (V21, [{"op": "add", "path": "/" + "k" * 256, "value": "v"}]),
    ],
)
def test_bad_documents_are_400(ctype, body):
    with pytest.raises(exceptions.BadRequest) as err:
        patch.parse(ctype, body, SCHEMA)
    assert err.value.code == 400


def test_pointer_escapes():
    (change,) = v21({"op": "add", "path": "/a~1b~0c", "value": "v"})
    assert change.path == ["a/b~c"]


@pytest.mark.parametrize(
    "root",
    [
        "created_at",
        "updated_at",
        "status",
        "checksum",
        "size",
        "virtual_size",
        "direct_url",
        "self",
        "file",
        "schema",
        "id",
        "os_hash_algo",
        "os_hash_value",
    ],
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_read_only_roots_are_403(root, op):
    raw = {"op": op, "path": f"/{root}"}
    if op != "remove":
        raw["value"] = "x"
    with pytest.raises(exceptions.ReadOnlyProperty) as err:
        v21(raw)
    assert err.value.code == 403


@pytest.mark.parametrize(
    "root", ["location", "deleted", "deleted_at", "os_glance_import_task", "os_glance_x"]
)
def test_reserved_roots_are_403(root):
    with pytest.raises(exceptions.ReservedProperty):
        v21({"op": "add", "path": f"/{root}", "value": "x"})


def test_location_paths_have_their_depths():
    changes = v21(
        {"op": "add", "path": "/locations/-", "value": {"url": "http://a", "metadata": {}}},
        {"op": "remove", "path": "/locations/0"},
        {"op": "replace", "path": "/locations", "value": [{"url": "http://a", "metadata": {}}]},
    )
    assert [c.path for c in changes] == [["locations", "-"], ["locations", "0"], ["locations"]]


# -- apply ------------------------------------------------------------------------------------


def test_replace_base_and_custom():
    upd = patch.apply(
        image(),
        v21(
            {"op": "replace", "path": "/name", "value": "m"},
            {"op": "replace", "path": "/foo", "value": "baz"},
        ),
        is_admin=False,
    )
    assert upd.values == {"name": "m"}
    assert upd.properties == {"foo": "baz"} and upd.properties_changed
    assert upd.needs_modify


def test_replace_missing_custom_property_is_409():
    with pytest.raises(exceptions.Conflict) as err:
        patch.apply(image(), v21({"op": "replace", "path": "/nope", "value": "x"}), is_admin=False)
    assert err.value.code == 409


def test_add_existing_v20_is_409_and_v21_overwrites():
    for path in ("/foo", "/name"):
        changes = patch.parse(V20, [{"add": path, "value": "x"}], SCHEMA)
        with pytest.raises(exceptions.Conflict):
            patch.apply(image(), changes, is_admin=False)
    upd = patch.apply(image(), v21({"op": "add", "path": "/foo", "value": "x"}), is_admin=False)
    assert upd.properties == {"foo": "x"}
    upd = patch.apply(image(), patch.parse(V20, [{"add": "/new", "value": "x"}], SCHEMA), is_admin=False)
    assert upd.properties == {"foo": "bar", "new": "x"}


@pytest.mark.parametrize(
    "root",
    [
        "name",
        "visibility",
        "protected",
        "os_hidden",
        "owner",
        "disk_format",
        "container_format",
        "min_disk",
        "min_ram",
        "tags",
    ],
)
def test_remove_base_attribute_is_403(root):
    with pytest.raises(exceptions.Forbidden) as err:
        patch.apply(image(), v21({"op": "remove", "path": f"/{root}"}), is_admin=True)
    assert err.value.code == 403


def test_remove_custom_and_missing():
    upd = patch.apply(image(), v21({"op": "remove", "path": "/foo"}), is_admin=False)
    assert upd.properties == {} and upd.properties_changed
    with pytest.raises(exceptions.Conflict):
        patch.apply(image(), v21({"op": "remove", "path": "/nope"}), is_admin=False)


@pytest.mark.parametrize(
    "status", ["saving", "active", "deactivated", "killed", "uploading", "pending_delete"]
)
@pytest.mark.parametrize("root", ["disk_format", "container_format"])
def test_formats_only_while_queued_or_importing(status, root):
    value = "raw" if root == "disk_format" else "bare"
    with pytest.raises(exceptions.Forbidden) as err:
        patch.apply(
            image(status=status), v21({"op": "replace", "path": f"/{root}", "value": value}), is_admin=True
        )
    assert err.value.code == 403


@pytest.mark.parametrize("status", ["queued", "importing"])
def test_formats_allowed_while_queued_or_importing(status):
    upd = patch.apply(
        image(status=status), v21({"op": "replace", "path": "/disk_format", "value": "raw"}), is_admin=False
    )
    assert upd.values == {"disk_format": "raw"}


@pytest.mark.parametrize("op", ["add", "replace"])
def test_owner_needs_admin(op):
    changes = v21({"op": op, "path": "/owner", "value": "p2"})
    with pytest.raises(exceptions.Forbidden):
        patch.apply(image(), changes, is_admin=False)
    assert patch.apply(image(), changes, is_admin=True).values == {"owner": "p2"}


def test_visibility_is_reported_for_policy():
    upd = patch.apply(
        image(), v21({"op": "replace", "path": "/visibility", "value": "public"}), is_admin=False
    )
    assert upd.visibility == "public" and upd.values == {"visibility": "public"}


def test_tags_replace_is_a_sorted_set():
    upd = patch.apply(
        image(), v21({"op": "replace", "path": "/tags", "value": ["b", "a", "b"]}), is_admin=False
    )
    assert upd.tags == ["a", "b"]


def test_changes_apply_in_order():
    upd = patch.apply(
        image(),
        v21(
            {"op": "add", "path": "/x", "value": "1"},
            {"op": "replace", "path": "/x", "value": "2"},
            {"op": "remove", "path": "/foo"},
        ),
        is_admin=False,
    )
    assert upd.properties == {"x": "2"}


def test_unchanged_value_is_not_written():
    upd = patch.apply(image(), v21({"op": "replace", "path": "/name", "value": "n"}), is_admin=False)
    assert upd.values == {}


def test_location_ops_are_collected():
    upd = patch.apply(
        image(),
        v21(
            {"op": "add", "path": "/locations/-", "value": {"url": "http://a", "metadata": {}}},
            {"op": "remove", "path": "/locations/1"},
        ),
        is_admin=True,
    )
    assert upd.location_ops == [("add", "-", {"url": "http://a", "metadata": {}}), ("remove", 1)]
    assert not upd.needs_modify


def test_empty_locations_replace_is_403():
    with pytest.raises(exceptions.Forbidden):
        patch.apply(image(), v21({"op": "replace", "path": "/locations", "value": []}), is_admin=True)


@pytest.mark.parametrize("pos", ["x", "-1"])
def test_bad_location_position_is_400(pos):
    with pytest.raises(exceptions.BadRequest):
        patch.apply(
            image(),
            v21({"op": "add", "path": f"/locations/{pos}", "value": {"url": "http://a", "metadata": {}}}),
            is_admin=True,
        )
