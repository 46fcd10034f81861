"""Metadef policies: Glance's rule names and defaults (``glance/policies/metadef.py``).

Writes need ``metadef_admin``; reads of one namespace need an admin, or a reader of the
owning project, or a reader when the namespace is public; listing needs a reader. A caller
who may not read a namespace gets 404 for it, whatever it asked (Glance's MetadefAPIPolicy).
"""

from __future__ import annotations

from glance_service import exceptions
from glance_service.context import RequestContext


def namespace_target(namespace: dict) -> dict:
    owner = namespace.get("owner")
    return {
        "project_id": owner,
        "owner": owner,
        "visibility": namespace.get("visibility"),
        "namespace": namespace.get("namespace"),
    }


def check(policy, ctx: RequestContext, rule: str, target: dict) -> bool:
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
