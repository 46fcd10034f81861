"""Metadef policies: Glance's rule names and defaults (``glance/policies/metadef.py``).

Writes need ``metadef_admin``; reads of one namespace need an admin, or a reader of the
owning project, or a reader when the namespace is public; listing needs a reader. A caller
who may not read a namespace gets 404 for it, whatever it asked (Glance's MetadefAPIPolicy).
"""

from __future__ import annotations

import threading

from oslo_policy import policy as oslo_policy

from glance_service import exceptions
from glance_service.context import RequestContext

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


_lock = threading.Lock()


def _ensure_registered(policy) -> None:
    """Add these defaults to the image service's enforcer once (an operator's policy file
    still overrides them by name). Without it an unknown rule would fall to ``default``:
    allow."""
    if getattr(policy, "_metadef_rules_registered", False):
        return
    with _lock:
        if getattr(policy, "_metadef_rules_registered", False):
            return
        enforcer = policy._enforcer
        for rule in list_rules():
            if rule.name not in enforcer.registered_rules:
                enforcer.register_default(rule)
        policy._metadef_rules_registered = True


def namespace_target(namespace: dict) -> dict:
    owner = namespace.get("owner")
    return {
        "project_id": owner,
        "owner": owner,
        "visibility": namespace.get("visibility"),
        "namespace": namespace.get("namespace"),
    }


def check(policy, ctx: RequestContext, rule: str, target: dict) -> bool:
    _ensure_registered(policy)
    return policy.check_target(ctx, rule, target)


def enforce_collection(policy, ctx: RequestContext, rule: str) -> None:
    """A rule on no namespace in particular (list, create): 403 when refused."""
    if not check(policy, ctx, rule, {"project_id": ctx.project_id, "owner": ctx.project_id}):
        raise exceptions.Forbidden(f"You are not authorized to complete {rule} action.")


def enforce(policy, ctx: RequestContext, rule: str, namespace: dict) -> None:
    """A rule on an existing namespace: 404 if the caller may not even read it, else 403."""
    target = namespace_target(namespace)
    if check(policy, ctx, rule, target):
        return
    if rule.startswith(("get_", "list_")) or not check(policy, ctx, "get_metadef_namespace", target):
        raise exceptions.NotFound(
            f"Metadata definition namespace={namespace.get('namespace')} was not found."
        )
    raise exceptions.Forbidden(f"You are not authorized to complete {rule} action.")
