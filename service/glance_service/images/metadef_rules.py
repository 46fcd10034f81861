"""Metadef policy defaults: Glance's rule names and check strings (``glance/policies/metadef.py``).

Writes need ``metadef_admin``; reads of one namespace need an admin, or a reader of the
owning project, or a reader when the namespace is public; listing needs a reader. Registered
with every other default by ``glance_service.images.policy.Enforcer``.
"""

from __future__ import annotations

from oslo_policy import policy as oslo_policy

METADEF_ADMIN = "rule:metadef_admin"
READER_OF_PROJECT = "rule:context_is_admin or (role:reader and project_id:%(project_id)s)"
READER_OF_NAMESPACE = (
    "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))"
)

_READS = {
    "get_metadef_namespace": ("Get a specific namespace.", READER_OF_NAMESPACE),
    "get_metadef_namespaces": ("List namespaces.", READER_OF_PROJECT),
    "list_metadef_resource_types": ("List meta definition resource types.", READER_OF_PROJECT),
    "get_metadef_resource_type": ("Get resource type associations of a namespace.", READER_OF_NAMESPACE),
    "get_metadef_object": ("Get a specific object from a namespace.", READER_OF_NAMESPACE),
    "get_metadef_objects": ("Get objects from a namespace.", READER_OF_NAMESPACE),
    "get_metadef_property": ("Get a specific property from a namespace.", READER_OF_NAMESPACE),
    "get_metadef_properties": ("List properties of a namespace.", READER_OF_NAMESPACE),
    "get_metadef_tag": ("Get a tag of a namespace.", READER_OF_NAMESPACE),
    "get_metadef_tags": ("List tags of a namespace.", READER_OF_NAMESPACE),
}
_WRITES = {
    "add_metadef_namespace": "Create a namespace.",
    "modify_metadef_namespace": "Modify a namespace.",
    "delete_metadef_namespace": "Delete a namespace.",
    "add_metadef_resource_type_association": "Associate a resource type with a namespace.",
    "remove_metadef_resource_type_association": "Remove a resource type association.",
    "add_metadef_object": "Create an object in a namespace.",
    "modify_metadef_object": "Update an object.",
    "delete_metadef_object": "Delete an object (or all objects) of a namespace.",
    "add_metadef_property": "Create a property in a namespace.",
    "modify_metadef_property": "Update a property.",
    "remove_metadef_property": "Delete a property (or all properties) of a namespace.",
    "add_metadef_tag": "Add a tag to a namespace.",
    "add_metadef_tags": "Create tags in a namespace.",
    "modify_metadef_tag": "Update a tag.",
    "delete_metadef_tag": "Delete a tag.",
    "delete_metadef_tags": "Delete all tags of a namespace.",
}


def list_rules() -> list[oslo_policy.RuleDefault]:
    rules = [
        oslo_policy.RuleDefault("metadef_default", "", "Default rule for metadef APIs."),
        oslo_policy.RuleDefault("metadef_admin", "role:admin", "Rule for metadef writes."),
    ]
    for name, (desc, check) in _READS.items():
        rules.append(oslo_policy.RuleDefault(name, check, desc, scope_types=["project"]))
    for name, desc in _WRITES.items():
        rules.append(oslo_policy.RuleDefault(name, METADEF_ADMIN, desc, scope_types=["project"]))
    return rules
