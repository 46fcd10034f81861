#!/usr/bin/python
"""Registered limits (Keystone unified limits) of the image service, made or corrected.

openstack.cloud has no module for registered limits; this one uses openstacksdk (the same the
collection uses), as upstream Glance's install guide does with
``openstack registered limit create --service glance --default-limit N --region R NAME``.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: glance_registered_limits
short_description: Make the image service's registered limits in Keystone what is asked
description:
  - For each resource in I(limits), creates the registered limit of service I(service) in
    region I(region), or sets its default limit when it differs. Other registered limits are
    left alone (a project limit is never touched). Supports check mode.
options:
  auth:
    description: openstacksdk auth (auth_url, username, password, project_name, domains) of an admin.
    type: dict
    required: true
  region_name:
    description: Region of the catalog the SDK uses.
    type: str
  service:
    description: Name or id of the image service.
    type: str
    default: glance
  region:
    description: Region the limits belong to (default I(region_name)).
    type: str
  limits:
    description: "{resource_name: default_limit}, e.g. {image_size_total: 1000} (MiB for the sizes)."
    type: dict
    required: true
"""

RETURN = r"""
created:
  description: Resources whose registered limit was (or, in check mode, would be) created.
  type: list
  returned: always
updated:
  description: "Resources whose default limit was (or would be) changed: {name: [old, new]}."
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def plan(existing: dict[str, int], wanted: dict[str, int]) -> tuple[list[str], dict[str, list[int]]]:
    """What to create and what to update, from {name: default_limit} now and wanted."""
    created = sorted(name for name in wanted if name not in existing)
    updated = {
        name: [existing[name], int(value)]
        for name, value in sorted(wanted.items())
        if name in existing and int(existing[name]) != int(value)
    }
    return created, updated


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "auth": {"type": "dict", "required": True, "no_log": True},
            "region_name": {"type": "str"},
            "service": {"type": "str", "default": "glance"},
            "region": {"type": "str"},
            "limits": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        wanted = {str(name): int(value) for name, value in p["limits"].items()}
    except (TypeError, ValueError) as exc:
        module.fail_json(msg=f"limits: every value must be an integer ({exc})")
    if any(value < 0 for value in wanted.values()):
        module.fail_json(msg="limits: a limit cannot be negative")
    region = p["region"] or p["region_name"]
    try:
        import openstack
        from keystoneauth1 import exceptions as ksa_exceptions
    except ImportError:
        module.fail_json(msg="openstacksdk is required on the host that registers the limits")
    try:
        conn = openstack.connect(auth=p["auth"], region_name=p["region_name"], auth_type="password")
        service = conn.identity.find_service(p["service"])
        if service is None:
            if module.check_mode:  # the service is created by an earlier task, skipped in check mode
                module.exit_json(changed=bool(wanted), created=sorted(wanted), updated={})
            module.fail_json(msg=f"no service {p['service']!r} in Keystone")
        found = {
            limit.resource_name: limit
            for limit in conn.identity.registered_limits(service_id=service.id, region_id=region)
        }
        created, updated = plan({name: limit.default_limit for name, limit in found.items()}, wanted)
        if not module.check_mode:
            for name in created:
                conn.identity.create_registered_limit(
                    service_id=service.id, region_id=region, resource_name=name, default_limit=wanted[name]
                )
            for name, (_, value) in updated.items():
                conn.identity.update_registered_limit(found[name], default_limit=value)
    except (openstack.exceptions.SDKException, ksa_exceptions.ClientException) as exc:
        module.fail_json(msg=f"Keystone: {exc}")
    module.exit_json(changed=bool(created or updated), created=created, updated=updated)


if __name__ == "__main__":
    main()
