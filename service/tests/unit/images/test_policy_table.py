"""Every default rule of reference 4.3 × five callers, with the targets the service builds.

The image is owned by project ``owner``. Columns:

* ``admin``: admin role in another project (a global admin, like Glance's ``role:admin``);
* ``member``/``reader``: member or reader of the owning project;
* ``other``: a member of another project that reached the image as a community image (the
  only way a non-member reaches an image it does not own besides public ones; a private or
  shared image is already a 404 in the data layer);
* ``friend``: a member of a project the image is shared with (``image.member``).
"""

from __future__ import annotations

import pytest
from oslo_config import cfg

from glance_service.context import RequestContext
from glance_service.images import policy

WHO = ("admin", "member", "reader", "other", "friend")

CALLERS = {
    "admin": RequestContext(project_id="admins", roles=["admin", "member", "reader"], is_admin=True),
    "member": RequestContext(project_id="owner", roles=["member", "reader"]),
    "reader": RequestContext(project_id="owner", roles=["reader"]),
    "other": RequestContext(project_id="other", roles=["member", "reader"]),
    "friend": RequestContext(project_id="friend", roles=["member", "reader"]),
}

_BASE = {"id": "11111111-2222-3333-4444-555555555555", "owner": "owner", "name": "img", "properties": {}}
IMAGES = {
    "admin": dict(_BASE, visibility="shared"),
    "member": dict(_BASE, visibility="shared"),
    "reader": dict(_BASE, visibility="shared"),
    "other": dict(_BASE, visibility="community"),
    "friend": dict(_BASE, visibility="shared"),
}

T, F = True, False
# rule: allowed for (admin, owner member, owner reader, other-project member, image member)
TABLE: dict[str, tuple[bool, bool, bool, bool, bool]] = {
    "context_is_admin": (T, F, F, F, F),
    "default": (T, T, T, T, T),
    "service_api": (T, F, F, F, F),
    "add_image": (T, T, F, F, F),
    "get_image": (T, T, T, T, T),
    "get_images": (T, T, T, T, T),  # target: the caller's own project
    "modify_image": (T, T, F, F, F),
    "delete_image": (T, T, F, F, F),
    "upload_image": (T, T, F, F, F),
    "deactivate": (T, T, F, F, F),
    "reactivate": (T, T, F, F, F),
    "publicize_image": (T, F, F, F, F),
    "communitize_image": (T, T, F, F, F),
    "download_image": (T, T, F, T, T),
    "download_from_store": (T, T, F, T, T),
    "copy_image": (T, F, F, F, F),
    "get_image_location": (T, T, T, F, F),
    "set_image_location": (T, T, F, F, F),
    "delete_image_location": (T, F, F, F, F),
    "add_image_location": (T, T, F, F, F),
    "fetch_image_location": (T, F, F, F, F),
    "add_member": (T, T, F, F, F),
    "delete_member": (T, T, F, F, F),
    "get_member": (T, T, T, F, T),
    "get_members": (T, T, T, F, T),
    "modify_member": (T, F, F, F, T),
    "manage_image_cache": (T, F, F, F, F),
    "cache_image": (T, F, F, F, F),
    "cache_list": (T, F, F, F, F),
    "cache_delete": (T, F, F, F, F),
    "cache_clean": (T, F, F, F, F),
    "cache_prune": (T, F, F, F, F),
    "list_cached_nodes": (T, F, F, F, F),
    "stores_info_detail": (T, F, F, F, F),
    "tasks_api_access": (T, F, F, F, F),
    "get_task": (T, T, T, T, T),
    "get_tasks": (T, T, T, T, T),
    "add_task": (T, T, T, T, T),
    "modify_task": (T, T, T, T, T),
}


@pytest.fixture(scope="module")
def enforcer() -> policy.Enforcer:
    conf = cfg.ConfigOpts()
    conf([], project="glance-policy-table")
    return policy.Enforcer(conf)


def _allowed(enforcer: policy.Enforcer, rule: str, who: str) -> bool:
    ctx = CALLERS[who]
    if rule == "get_images":  # the list handler's target: the caller's project
        return enforcer.check_target(ctx, rule, {"project_id": ctx.project_id})
    return enforcer.check(ctx, rule, IMAGES[who])


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("rule", sorted(TABLE))
def test_default_rule(enforcer, rule, who):
    assert _allowed(enforcer, rule, who) is TABLE[rule][WHO.index(who)]


def test_every_rule_in_the_table_is_registered_with_project_scope():
    registered = {rule.name: rule for rule in policy.list_rules()}
    assert set(TABLE) <= set(registered)
    assert all(registered[name].scope_types == ["project"] for name in TABLE)


def test_target_maps_owner_and_image_member():
    friend = CALLERS["friend"]
    target = policy.image_target(IMAGES["friend"], friend)
    assert target["project_id"] == target["owner"] == "owner"
    assert target["member_id"] == "friend" and target["visibility"] == "shared"
    # the owner is never its own image's member, and only shared images have members
    assert policy.image_target(IMAGES["member"], CALLERS["member"])["member_id"] is None
    assert policy.image_target(IMAGES["other"], CALLERS["other"])["member_id"] is None
    assert policy.image_target(None, friend) == {"project_id": "friend"}


def test_image_member_reader_reads_its_membership_but_cannot_act():
    reader = RequestContext(project_id="friend", roles=["reader"])
    conf = cfg.ConfigOpts()
    conf([], project="glance-policy-table")
    enf = policy.Enforcer(conf)
    image = IMAGES["friend"]
    assert enf.check(reader, "get_image", image)
    assert enf.check(reader, "get_member", image)
    assert not enf.check(reader, "modify_member", image)
    assert not enf.check(reader, "download_image", image)


def test_a_token_without_roles_gets_nothing_but_the_open_rules(enforcer):
    nobody = RequestContext(project_id="owner", roles=[])
    open_rules = {name for name, row in TABLE.items() if all(row)} - {"get_image", "get_images"}
    for rule in TABLE:
        assert enforcer.check(nobody, rule, IMAGES["member"]) is (rule in open_rules), rule


def test_defaults_apply_without_reading_the_policy_file():
    conf = cfg.ConfigOpts()
    conf([], project="glance-policy-table")
    enf = policy.Enforcer(conf, use_conf=False)
    for rule, row in TABLE.items():
        for who in WHO:
            assert _allowed(enf, rule, who) is row[WHO.index(who)], (rule, who)
