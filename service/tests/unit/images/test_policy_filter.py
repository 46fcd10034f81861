"""The memoised image filter used by listings decides exactly as one check per image."""

from __future__ import annotations

import itertools

import pytest
from oslo_config import cfg
from oslo_policy import policy as oslo_policy

from glance_service.context import RequestContext
from glance_service.images import policy

OWNERS = ("p", "q", None)
VISIBILITIES = ("public", "private", "shared", "community")
ROLES = (["reader", "member"], ["admin"], ["member"], ["reader"], [])


def _images():
    return [
        {
            "id": f"{i:036d}",
            "owner": owner,
            "visibility": vis,
            "name": f"n{i % 3}",
            "properties": {"k": str(i % 2)},
        }
        for i, (owner, vis) in enumerate(itertools.product(OWNERS, VISIBILITIES))
    ]


def _parsed(check: str):
    return oslo_policy.Rules.from_dict({"get_image": check})


@pytest.fixture
def conf(tmp_path):
    conf = cfg.ConfigOpts()
    conf([], project="glance-test-policy-filter", default_config_files=[])
    return conf


@pytest.mark.parametrize("roles", ROLES)
def test_filter_agrees_with_plain_checks(conf, roles):
    enforcer = policy.Enforcer(conf, use_conf=False)
    ctx = RequestContext(project_id="p", roles=roles, is_admin="admin" in roles)
    allowed = enforcer.image_filter(ctx, "get_image")
    for image in _images():
        assert allowed(image) == enforcer.check(ctx, "get_image", image), image


def test_rule_reading_other_fields_is_memoised_on_them(conf):
    enforcer = policy.Enforcer(conf, use_conf=False)
    # an operator's rule that looks at the image name: the memo must key on it
    enforcer._enforcer.set_rules(_parsed("'n1':%(name)s"), overwrite=False, use_conf=False)
    assert policy._target_keys(enforcer._enforcer, "get_image") == ("name",)
    ctx = RequestContext(project_id="p", roles=["reader"])
    allowed = enforcer.image_filter(ctx, "get_image")
    assert [allowed(i) for i in _images()] == [i["name"] == "n1" for i in _images()]


def test_unknown_check_kinds_are_not_memoised(conf):
    enforcer = policy.Enforcer(conf, use_conf=False)
    enforcer._enforcer.set_rules(_parsed("%(owner)s:p"), overwrite=False, use_conf=False)
    assert policy._target_keys(enforcer._enforcer, "get_image") is None


def test_target_checks_are_memoised_like_image_checks(conf, monkeypatch):
    """add_image (every create) and the visibility rules: oslo.policy inspects each check's
    signature on every call (~9 getfullargspec per create); a repeated decision is memoised on
    the caller's credentials and the target keys the rule reads, and new rules void it."""
    enforcer = policy.Enforcer(conf, use_conf=False)
    inner = enforcer._enforcer
    calls = []
    real = inner.enforce

    def counting(rule, target, creds, *args, **kwargs):
        calls.append(rule)
        return real(rule, target, creds, *args, **kwargs)

    monkeypatch.setattr(inner, "enforce", counting)
    ctx = RequestContext(project_id="p", roles=["reader", "member"])
    mine = {"project_id": "p", "owner": "p", "visibility": "shared"}
    theirs = {"project_id": "q", "owner": "q", "visibility": "shared"}
    assert enforcer.check_target(ctx, "add_image", mine)
    assert enforcer.check_target(ctx, "add_image", dict(mine))
    assert calls == ["add_image"]
    assert not enforcer.check_target(ctx, "add_image", theirs)
    assert calls == ["add_image", "add_image"]
    admin = RequestContext(project_id="p", roles=["admin"], is_admin=True)
    assert enforcer.check_target(admin, "add_image", theirs)
    # A rule read anew (the policy file changed) decides again.
    inner.set_rules(oslo_policy.Rules.from_dict({"add_image": "!"}), overwrite=False, use_conf=False)
    assert not enforcer.check_target(ctx, "add_image", mine)
