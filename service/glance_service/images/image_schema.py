"""The image JSON schema (what ``GET /v2/schemas/image`` publishes and what create/PATCH
validate against).

Built once per process from ``[image_format]``: clients (glanceclient, nova) read the
format enums and the ``is_base`` flags from it, so its shape follows Glance's exactly.
The compiled validator is kept, so validating a request costs no schema compilation.
"""

from __future__ import annotations

import copy

import jsonschema
from oslo_config import cfg

from glance_service import exceptions
from glance_service.common.registrar import registrar

UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"

DEFAULT_CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
DEFAULT_DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]

image_format_opts = [
    cfg.ListOpt(
        "container_formats",
        default=DEFAULT_CONTAINER_FORMATS,
        deprecated_opts=[cfg.DeprecatedOpt("container_formats", group="DEFAULT")],
        help="Container formats an image may declare (the schema's container_format enum).",
    ),
    cfg.ListOpt(
        "disk_formats",
        default=DEFAULT_DISK_FORMATS,
        deprecated_opts=[cfg.DeprecatedOpt("disk_formats", group="DEFAULT")],
        help="Disk formats an image may declare (the schema's disk_format enum).",
    ),
]


register_opts = registrar(("image_format", image_format_opts))


STATUSES = [
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "uploading",
    "importing",
    "pending_delete",
    "deactivated",
]

# The operator-facing custom properties Glance ships in etc/schema-image.json; published
# with ``is_base: false`` so glanceclient patches them with ``add`` instead of ``replace``.
CUSTOM_PROPERTIES: dict[str, dict] = {
    "kernel_id": {
        "type": ["null", "string"],
        "pattern": UUID_PATTERN,
        "description": "ID of image stored in Glance that should be used as the kernel when "
        "booting an AMI-style image.",
    },
    "ramdisk_id": {
        "type": ["null", "string"],
        "pattern": UUID_PATTERN,
        "description": "ID of image stored in Glance that should be used as the ramdisk when "
        "booting an AMI-style image.",
    },
    "instance_uuid": {
        "type": "string",
        "description": "Metadata which can be used to record which instance this image is "
        "associated with. (Informational only, does not create an instance snapshot.)",
    },
    "architecture": {
        "description": "Operating system architecture as specified in "
        "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
        "type": "string",
    },
    "os_distro": {
        "description": "Common name of operating system distribution as specified in "
        "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
        "type": "string",
    },
    "os_version": {
        "description": "Operating system version as specified by the distributor.",
        "type": "string",
    },
    "description": {"description": "A human-readable string describing this image.", "type": "string"},
    "cinder_encryption_key_id": {
        "description": "Identifier in the OpenStack Key Management Service for the encryption key "
        "for the Block Storage Service to use when mounting a volume created from this image",
        "type": "string",
    },
    "cinder_encryption_key_deletion_policy": {
        "description": "States the condition under which the Image Service will delete the object "
        "associated with the 'cinder_encryption_key_id' image property.  If this property is "
        "missing, the Image Service will take no action",
        "type": "string",
        "enum": ["on_image_deletion", "do_not_delete"],
    },
}


def base_properties(disk_formats: list[str], container_formats: list[str]) -> dict[str, dict]:
    """The base (``is_base`` implied) properties of an image, as Glance publishes them."""
    return {
        "id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
        "name": {
            "type": ["null", "string"],
            "description": "Descriptive name for the image",
            "maxLength": 255,
        },
        "status": {
            "type": "string",
            "readOnly": True,
            "description": "Status of the image",
            "enum": list(STATUSES),
        },
        "visibility": {
            "type": "string",
            "description": "Scope of image accessibility",
            "enum": ["community", "public", "private", "shared"],
        },
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {
            "type": "boolean",
            "description": "If true, image will not appear in default image list response.",
        },
        "checksum": {
            "type": ["null", "string"],
            "readOnly": True,
            "description": "md5 hash of image contents.",
            "maxLength": 32,
        },
        "os_hash_algo": {
            "type": ["null", "string"],
            "readOnly": True,
            "description": "Algorithm to calculate the os_hash_value",
            "maxLength": 64,
        },
        "os_hash_value": {
            "type": ["null", "string"],
            "readOnly": True,
            "description": "Hexdigest of the image contents using the algorithm specified by the "
            "os_hash_algo",
            "maxLength": 128,
        },
        "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
        "size": {"type": ["null", "integer"], "readOnly": True, "description": "Size of image file in bytes"},
        "virtual_size": {
            "type": ["null", "integer"],
            "readOnly": True,
            "description": "Virtual size of image in bytes",
        },
        "container_format": {
            "type": ["null", "string"],
            "description": "Format of the container",
            "enum": [None, *container_formats],
        },
        "disk_format": {
            "type": ["null", "string"],
            "description": "Format of the disk",
            "enum": [None, *disk_formats],
        },
        "created_at": {
            "type": "string",
            "readOnly": True,
            "description": "Date and time of image registration",
        },
        "updated_at": {
            "type": "string",
            "readOnly": True,
            "description": "Date and time of the last image modification",
        },
        "tags": {
            "type": "array",
            "description": "List of strings related to the image",
            "items": {"type": "string", "maxLength": 255},
        },
        "direct_url": {
            "type": "string",
            "readOnly": True,
            "description": "URL to access the image file kept in external store",
        },
        "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {
            "type": "integer",
            "description": "Amount of disk space (in GB) required to boot image.",
        },
        "self": {"type": "string", "readOnly": True, "description": "An image self url"},
        "file": {"type": "string", "readOnly": True, "description": "An image file url"},
        "stores": {
            "type": "string",
            "readOnly": True,
            "description": "Store in which image data resides.  Only present when the operator has "
            "enabled multiple stores.  May be a comma-separated list of store identifiers.",
        },
        "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                    "validation_data": {
                        "description": "Values to be used to populate the corresponding image "
                        "properties. If the image status is not 'queued', values must exactly "
                        "match those already contained in the image properties.",
                        "type": "object",
                        "writeOnly": True,
                        "additionalProperties": False,
                        "properties": {
                            "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                            "os_hash_algo": {"type": "string", "maxLength": 64},
                            "os_hash_value": {"type": "string", "maxLength": 128},
                        },
                        "required": ["os_hash_algo", "os_hash_value"],
                    },
                },
                "required": ["url", "metadata"],
            },
            "description": "A set of URLs to access the image file kept in external store",
        },
    }


IMAGE_LINKS = [
    {"rel": "self", "href": "{self}"},
    {"rel": "enclosure", "href": "{file}"},
    {"rel": "describedby", "href": "{schema}"},
]

# Member and task schemas (published read-only; conformance clients check their names).
MEMBER_PROPERTIES: dict[str, dict] = {
    "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
    "image_id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
    "created_at": {"type": "string", "description": "Date and time of image member creation"},
    "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
    "status": {
        "type": "string",
        "description": "The status of this image member",
        "enum": ["pending", "accepted", "rejected"],
    },
    "schema": {"readOnly": True, "type": "string"},
}


class ImageSchema:
    """The image schema for one configuration; build once per process."""

    def __init__(self, disk_formats: list[str], container_formats: list[str]):
        self.disk_formats = list(disk_formats)
        self.container_formats = list(container_formats)
        self.base = base_properties(self.disk_formats, self.container_formats)
        custom = copy.deepcopy(CUSTOM_PROPERTIES)
        for prop in custom.values():
            prop["is_base"] = False
        properties = {**self.base, **custom}
        self._raw = {
            "name": "image",
            "properties": properties,
            "additionalProperties": {"type": "string"},
            "links": IMAGE_LINKS,
        }
        # Glance validates with jsonschema's default (draft 4 compatible) rules; ``is_base``
        # and ``readOnly`` are annotations the validator ignores.
        self._validator = jsonschema.Draft4Validator(self._raw)

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> ImageSchema:
        return cls(conf.image_format.disk_formats, conf.image_format.container_formats)

    def raw(self) -> dict:
        return self._raw

    def collection_raw(self) -> dict:
        return paged_collection("images", self._raw)

    def validate(self, obj: object) -> None:
        """Raise ``SchemaValidationError`` (400) with jsonschema's first message."""
        err = jsonschema.exceptions.best_match(self._validator.iter_errors(obj))
        if err is not None:
            raise exceptions.SchemaValidationError(
                f"Provided object does not match schema 'image': {err.message}"
            )


def paged_collection(name: str, item: dict) -> dict:
    """The schema of a paged list (images, tasks): ``name`` holds the items, with links to the
    first and next pages."""
    return {
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def member_schema() -> dict:
    return {"name": "member", "properties": MEMBER_PROPERTIES}


def members_schema() -> dict:
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }
