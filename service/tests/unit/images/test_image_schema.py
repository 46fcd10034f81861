import pytest

from glance_service import exceptions
from glance_service.images.image_schema import (
    CUSTOM_PROPERTIES,
    DEFAULT_CONTAINER_FORMATS,
    DEFAULT_DISK_FORMATS,
    ImageSchema,
)


@pytest.fixture(scope="module")
def schema():
    return ImageSchema(DEFAULT_DISK_FORMATS, DEFAULT_CONTAINER_FORMATS)


def test_raw_is_glance_shaped(schema):
    raw = schema.raw()
    assert raw["name"] == "image"
    assert raw["additionalProperties"] == {"type": "string"}
    assert [link["rel"] for link in raw["links"]] == ["self", "enclosure", "describedby"]
    assert raw["properties"]["disk_format"]["enum"] == [None, *DEFAULT_DISK_FORMATS]
    assert raw["properties"]["container_format"]["enum"] == [None, *DEFAULT_CONTAINER_FORMATS]
    for name in CUSTOM_PROPERTIES:
        assert raw["properties"][name]["is_base"] is False
    assert "is_base" not in raw["properties"]["name"]


def test_collection_schema_names(schema):
    raw = schema.collection_raw()
    assert raw["name"] == "images"
    assert raw["properties"]["images"]["items"]["name"] == "image"
    assert set(raw["properties"]) == {"images", "first", "next", "schema"}


def test_formats_follow_config():
    custom = ImageSchema(["raw"], ["bare"])
    custom.validate({"disk_format": "raw", "container_format": "bare"})
    with pytest.raises(exceptions.SchemaValidationError):
        custom.validate({"disk_format": "qcow2"})


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x" * 256},
        {"disk_format": "floppy"},
        {"container_format": "zip"},
        {"visibility": "everyone"},
        {"protected": "yes"},
        {"min_ram": "1"},
        {"tags": ["x" * 256]},
        {"tags": "a"},
        {"foo": 1},
        {"foo": None},
        {"kernel_id": "not-a-uuid"},
        {"cinder_encryption_key_deletion_policy": "sometimes"},
        {"id": "abc"},
    ],
)
def test_invalid_bodies(schema, body):
    with pytest.raises(exceptions.SchemaValidationError) as err:
        schema.validate(body)
    assert err.value.code == 400


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": None, "disk_format": None, "container_format": None},
        {"name": "x" * 255, "foo": "bar", "kernel_id": None},
        {"id": "b2173dd3-7ad6-4362-baa6-a68bce3565cb", "tags": ["a", "b"], "min_disk": 3},
    ],
)
def test_valid_bodies(schema, body):
    schema.validate(body)
