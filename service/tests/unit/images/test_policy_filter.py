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
