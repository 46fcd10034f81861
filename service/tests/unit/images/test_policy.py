"""Default rules: each rule × admin / owner member / owner reader / other-project member."""

import os
import time

import pytest
from oslo_config import cfg

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.images import policy


@pytest.fixture(scope="module")
def enforcer():
    conf = cfg.ConfigOpts()
    conf([], project="glance-policy-test")
    return policy.Enforcer(conf)


def ctx(kind: str) -> RequestContext:
    return {
        "admin": RequestContext(project_id="other", roles=["admin", "member", "reader"], is_admin=True),
        "member": RequestContext(project_id="owner", roles=["member", "reader"]),
        "reader": RequestContext(project_id="owner", roles=["reader"]),
        "other": RequestContext(project_id="other", roles=["member", "reader"]),
        "service": RequestContext(project_id="service", roles=["service"]),
    }[kind]


PRIVATE = {"id": "i", "owner": "owner", "visibility": "private", "properties": {}}
SHARED = dict(PRIVATE, visibility="shared")
PUBLIC = dict(PRIVATE, visibility="public")

# rule: (admin, owner member, owner reader, other-project member) on a private image
TABLE = {
    "add_image": (True, True, False, False),
    "get_image": (True, True, True, False),
    "modify_image": (True, True, False, False),
    "delete_image": (True, True, False, False),
    "upload_image": (True, True, False, False),
    "download_image": (True, True, False, False),
    "publicize_image": (True, False, False, False),
    "communitize_image": (True, True, False, False),
    "deactivate": (True, True, False, False),
    "reactivate": (True, True, False, False),
    "copy_image": (True, False, False, False),
    "get_image_location": (True, True, True, False),
    "set_image_location": (True, True, False, False),
    "delete_image_location": (True, False, False, False),
    "add_image_location": (True, True, False, False),
    "fetch_image_location": (True, False, False, False),
    "add_member": (True, True, False, False),
    "delete_member": (True, True, False, False),
    "get_member": (True, True, True, False),
    "get_members": (True, True, True, False),
    "modify_member": (True, False, False, False),
    "manage_image_cache": (True, False, False, False),
    "cache_image": (True, False, False, False),
    "cache_list": (True, False, False, False),
    "cache_delete": (True, False, False, False),
    "stores_info_detail": (True, False, False, False),
    "tasks_api_access": (True, False, False, False),
    "get_task": (True, True, True, True),
}


@pytest.mark.parametrize("rule", sorted(TABLE))
@pytest.mark.parametrize("who", ["admin", "member", "reader", "other"])
def test_default_rules_on_private_image(enforcer, rule, who):
    expected = TABLE[rule][["admin", "member", "reader", "other"].index(who)]
    assert enforcer.check(ctx(who), rule, PRIVATE) is expected


def test_every_documented_rule_is_registered():
    names = {r.name for r in policy.list_rules()}
    assert set(TABLE) <= names
    assert {
        "context_is_admin",
        "default",
        "get_images",
        "download_from_store",
        "cache_clean",
        "cache_prune",
        "list_cached_nodes",
        "get_tasks",
        "add_task",
        "modify_task",
        "service_api",
    } <= names


def test_get_images_needs_reader_of_own_project(enforcer):
    for who, expected in (
        ("admin", True),
        ("member", True),
        ("reader", True),
        ("other", True),
        ("service", False),
    ):
        assert enforcer.check(ctx(who), "get_images", None) is expected


def test_shared_and_public_images_are_readable_by_others(enforcer):
    other = ctx("other")
    assert enforcer.check(other, "get_image", SHARED)
    assert enforcer.check(other, "get_image", PUBLIC)
    assert enforcer.check(other, "download_image", PUBLIC)
    assert not enforcer.check(other, "modify_image", PUBLIC)


def test_reader_cannot_download(enforcer):
    reader = RequestContext(project_id="other", roles=["reader"])
    assert enforcer.check(reader, "get_image", PUBLIC)
    assert not enforcer.check(reader, "download_image", PUBLIC)


def test_modify_member_is_for_the_member_project(enforcer):
    # image.member is the caller's project when it reached a shared image it does not own
    assert enforcer.check(ctx("other"), "modify_member", SHARED)
    assert not enforcer.check(ctx("member"), "modify_member", SHARED)


def test_fetch_image_location_service_role(enforcer):
    assert enforcer.check(ctx("service"), "fetch_image_location", PRIVATE)


def test_add_image_owner_target(enforcer):
    member = ctx("member")
    assert enforcer.check_target(member, "add_image", {"project_id": "owner", "owner": "owner"})
    assert not enforcer.check_target(member, "add_image", {"project_id": "x", "owner": "x"})


def test_enforce_image_hides_what_cannot_be_seen(enforcer):
    with pytest.raises(exceptions.ImageNotFound):
        enforcer.enforce_image(ctx("other"), "modify_image", PRIVATE)
    with pytest.raises(exceptions.Forbidden) as err:
        enforcer.enforce_image(ctx("other"), "modify_image", PUBLIC)
    assert err.value.code == 403
    with pytest.raises(exceptions.ImageNotFound):
        enforcer.enforce_image(ctx("other"), "get_image", PRIVATE)


def test_enforce_visibility(enforcer):
    member = ctx("member")
    target = {"project_id": "owner", "owner": "owner"}
    enforcer.enforce_visibility(member, "community", target)
    enforcer.enforce_visibility(member, "private", target)
    with pytest.raises(exceptions.Forbidden):
        enforcer.enforce_visibility(member, "public", target)


def test_policy_file_overrides(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('"publicize_image": "role:member"\n')
    conf = cfg.ConfigOpts()
    conf([], project="glance-policy-test")
    policy.Enforcer(conf)  # registers [oslo_policy]
    conf.set_override("policy_file", str(path), group="oslo_policy")
    enf = policy.Enforcer(conf)
    assert enf.check(ctx("member"), "publicize_image", PRIVATE)
    assert not enf.check(ctx("reader"), "publicize_image", PRIVATE)


def test_memoised_decisions_follow_an_edited_policy_file(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('"publicize_image": "role:member"\n')
    conf = cfg.ConfigOpts()
    conf([], project="glance-policy-test")
    policy.Enforcer(conf)
    conf.set_override("policy_file", str(path), group="oslo_policy")
    enf = policy.Enforcer(conf)
    member = ctx("member")
    assert enf.check(member, "publicize_image", PRIVATE)
    assert enf.check(member, "publicize_image", PRIVATE)  # from the memo
    path.write_text('"publicize_image": "role:admin"\n')
    later = time.time() + 10
    os.utime(path, (later, later))  # a new mtime even within the file system's granularity
    enf._enforcer._next_check = 0.0  # the throttle's few seconds have passed
    assert not enf.check(member, "publicize_image", PRIVATE)


def test_memo_keeps_callers_apart(enforcer):
    image = dict(PRIVATE, owner="owner")
    owner = RequestContext(project_id="owner", roles=["reader", "member"])
    stranger = RequestContext(project_id="other", roles=["reader", "member"])
    admin = RequestContext(project_id="other", roles=["admin"], is_admin=True)
    for _ in range(2):
        assert enforcer.check(owner, "get_image", image)
        assert not enforcer.check(stranger, "get_image", image)
        assert enforcer.check(admin, "get_image", image)
        assert enforcer.check(stranger, "get_image", dict(image, visibility="public"))
