"""Property protections: the rule file's parser and matcher, and their use by PATCH (upstream
Glance's ``property_utils.PropertyRules`` and ``api/property_protections.py``)."""

from __future__ import annotations

import textwrap

import pytest

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.images import patch
from glance_service.images import property_protections as pp
from glance_service.images.image_schema import DEFAULT_CONTAINER_FORMATS, DEFAULT_DISK_FORMATS, ImageSchema

SCHEMA = ImageSchema(DEFAULT_DISK_FORMATS, DEFAULT_CONTAINER_FORMATS)

ROLES_FILE = """\
[^x_owner_.*]
create = admin,member
read = admin,member
update = admin,member
delete = admin,member

[spl_read_only_prop]
create = admin
read = admin,spl_role
update = admin
delete = admin

[x_none_read]
create = admin,member
read = !
update = !
delete = !

[x_case_insensitive]
create = admin,Member
read = admin,Member
update = admin,Member
delete = admin,Member

[^x_all_permitted.*]
create = @
read = @
update = @
delete = @

[x_empty_update]
create = admin
read = admin
update =
delete = admin

[.*]
create = admin
read = admin
update = admin
delete = admin
"""


def ctx(roles: str) -> RequestContext:
    names = [r for r in roles.split(",") if r]
    return RequestContext(project_id="p1", user_id="u1", roles=names, is_admin="admin" in names)


def write(tmp_path, text: str, name: str = "prop.conf") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def rules(tmp_path) -> pp.PropertyRules:
    return pp.PropertyRules(pp.load_rules(write(tmp_path, ROLES_FILE), "roles"), "roles")


# -- the file ---------------------------------------------------------------------------------


def test_sections_keep_the_files_order_after_the_injected_os_glance_section(tmp_path):
    loaded = pp.load_rules(write(tmp_path, ROLES_FILE), "roles")
    assert [rule.section for rule in loaded] == [
        "os_glance.*",
        "^x_owner_.*",
        "spl_read_only_prop",
        "x_none_read",
        "x_case_insensitive",
        "^x_all_permitted.*",
        "x_empty_update",
        ".*",
    ]


def test_users_own_os_glance_sections_are_replaced(tmp_path):
    text = "[os_glance_foo]\ncreate = !\nread = !\nupdate = !\ndelete = !\n" + ROLES_FILE
    loaded = pp.load_rules(write(tmp_path, text), "roles")
    assert [rule.section for rule in loaded].count("os_glance.*") == 1
    assert "os_glance_foo" not in [rule.section for rule in loaded]
    r = pp.PropertyRules(loaded, "roles")
    assert r.check(ctx("member"), "os_glance_import_task", "create")


@pytest.mark.parametrize(
    "text, words",
    [
        ("[a]\ncreate = admin\nread = admin\nupdate = admin\n", ["[a]", "delete"]),
        ("[a(]\ncreate = @\nread = @\nupdate = @\ndelete = @\n", ["a(", "regular expression"]),
        ("[a]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n", ["[a]", "mutually exclusive"]),
        ("not an ini file\n", ["prop.conf"]),
    ],
)
def test_a_malformed_file_is_refused_with_a_clear_message(tmp_path, text, words):
    with pytest.raises(pp.InvalidPropertyProtectionFile) as err:
        pp.load_rules(write(tmp_path, text), "roles")
    for word in words:
        assert word in str(err.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(pp.InvalidPropertyProtectionFile, match="Couldn't find property protection file"):
        pp.load_rules(str(tmp_path / "nope.conf"), "roles")


def test_policies_format_allows_one_rule_name_per_operation(tmp_path):
    text = "[a]\ncreate = rule_a,rule_b\nread = @\nupdate = @\ndelete = @\n"
    with pytest.raises(pp.InvalidPropertyProtectionFile, match="Multiple policies"):
        pp.load_rules(write(tmp_path, text), "policies")
    # The same line is a list of roles in the roles format.
    assert pp.load_rules(write(tmp_path, text), "roles")


def test_default_section_values_apply_to_every_section(tmp_path):
    # configparser's [DEFAULT], as upstream reads the file.
    text = "[DEFAULT]\nread = @\nupdate = !\ndelete = !\n[a]\ncreate = admin\n"
    r = pp.PropertyRules(pp.load_rules(write(tmp_path, text), "roles"), "roles")
    assert r.check(ctx("reader"), "a", "read")
    assert not r.check(ctx("admin"), "a", "update")
    assert r.check(ctx("admin"), "a", "create")


# -- matching -------------------------------------------------------------------------------


def test_first_matching_section_wins(rules):
    # x_owner_foo matches ^x_owner_.* before .*: a member may create it.
    assert rules.check(ctx("member"), "x_owner_foo", "create")
    # Only .* matches: admin only.
    assert not rules.check(ctx("member"), "anything_else", "create")
    assert rules.check(ctx("admin"), "anything_else", "create")


def test_regex_is_searched_not_anchored(rules):
    # ``spl_read_only_prop`` is found inside a longer name (re.search, as upstream).
    assert rules.check(ctx("spl_role"), "my_spl_read_only_prop_2", "read")


def test_no_matching_section_refuses_everything(tmp_path):
    r = pp.PropertyRules(
        pp.load_rules(write(tmp_path, "[^a$]\ncreate=@\nread=@\nupdate=@\ndelete=@\n"), "roles"), "roles"
    )
    assert r.check(ctx("member"), "a", "create")
    for op in pp.OPERATIONS:
        assert not r.check(ctx("admin"), "b", op)


def test_at_and_bang(rules):
    assert rules.check(ctx(""), "x_all_permitted_1", "delete")
    assert not rules.check(ctx("admin"), "x_none_read", "read")
    assert rules.check(ctx("member"), "x_none_read", "create")


def test_empty_value_refuses_everyone(rules):
    assert not rules.check(ctx("admin"), "x_empty_update", "update")
    assert rules.check(ctx("admin"), "x_empty_update", "read")


def test_role_names_in_the_file_are_case_insensitive(rules):
    # Callers' roles arrive lowercased (the context), the file's are lowercased on compare.
    assert rules.check(ctx("member"), "x_case_insensitive", "read")


def test_service_roles_count(rules):
    service = RequestContext(project_id="p1", roles=["reader"], service_roles=["spl_role"])
    assert rules.check(service, "spl_read_only_prop", "read")


def test_unknown_operation_is_refused(rules):
    assert not rules.check(ctx("admin"), "x_owner_a", "list")


class FakePolicy:
    def __init__(self, allowed: dict[str, set[str]]):
        self.allowed = allowed
        self.calls: list[str] = []

    def check_rule(self, context, name: str) -> bool:
        self.calls.append(name)
        return bool(set(context.roles) & self.allowed.get(name, set()))


def test_policies_format_asks_the_policy_rule(tmp_path):
    text = """\
    [spl_creator_policy]
    create = glance_creator
    read = glance_creator
    update = context_is_admin
    delete = !

    [.*]
    create = @
    read = @
    update = @
    delete = @
    """
    policy = FakePolicy({"glance_creator": {"admin", "spl_create_role"}, "context_is_admin": {"admin"}})
    r = pp.PropertyRules(pp.load_rules(write(tmp_path, text), "policies"), "policies", policy)
    assert r.check(ctx("spl_create_role"), "spl_creator_policy", "create")
    assert not r.check(ctx("member"), "spl_creator_policy", "create")
    assert not r.check(ctx("spl_create_role"), "spl_creator_policy", "update")
    assert r.check(ctx("admin"), "spl_creator_policy", "update")
    assert not r.check(ctx("admin"), "spl_creator_policy", "delete")
    calls = len(policy.calls)
    assert r.check(ctx("member"), "other", "update")
    assert len(policy.calls) == calls  # '@' needs no policy


def test_checker_memoises_and_filters_readable(rules):
    checker = rules.for_context(ctx("member"))
    props = {"x_owner_a": "1", "x_none_read": "2", "secret": "3", "os_glance_import_task": "t"}
    assert checker.readable(props) == {"x_owner_a": "1", "os_glance_import_task": "t"}


def test_create_refuses_the_first_forbidden_property(rules):
    checker = rules.for_context(ctx("member"))
    checker.check_create({"x_owner_a": "1"})
    with pytest.raises(exceptions.ReservedProperty, match="Attribute 'secret' is reserved."):
        checker.check_create({"x_owner_a": "1", "secret": "2"})


# -- PATCH ---------------------------------------------------------------------------------


def image(**props):
    return {
        "id": "b2173dd3-7ad6-4362-baa6-a68bce3565cb",
        "name": "n",
        "status": "queued",
        "visibility": "shared",
        "protected": False,
        "os_hidden": False,
        "owner": "p1",
        "disk_format": None,
        "container_format": None,
        "min_disk": 0,
        "min_ram": 0,
        "properties": props,
        "tags": [],
        "locations": [],
    }


def apply(rules, roles, img, ops, media=patch.MEDIA_V21):
    changes = patch.parse(media, ops, SCHEMA)
    return patch.apply(img, changes, is_admin="admin" in roles, protect=rules.for_context(ctx(roles)))


def test_patch_replace_needs_update(rules):
    img = image(spl_read_only_prop="v")
    with pytest.raises(exceptions.ReservedProperty, match="Attribute 'spl_read_only_prop' is reserved."):
        apply(rules, "spl_role", img, [{"op": "replace", "path": "/spl_read_only_prop", "value": "w"}])
    upd = apply(rules, "admin", img, [{"op": "replace", "path": "/spl_read_only_prop", "value": "w"}])
    assert upd.properties == {"spl_read_only_prop": "w"}


def test_patch_on_an_unreadable_property_is_a_conflict(rules):
    img = image(x_none_read="v")
    for op in (
        {"op": "replace", "path": "/x_none_read", "value": "w"},
        {"op": "remove", "path": "/x_none_read"},
    ):
        with pytest.raises(exceptions.Conflict, match="Property x_none_read does not exist."):
            apply(rules, "admin", img, [op])


def test_patch_add_on_an_unreadable_property_is_a_create(rules):
    # Upstream's ExtraPropertiesProxy: the property is not seen, so ``add`` creates it.
    img = image(x_none_read="v")
    upd = apply(rules, "member", img, [{"op": "add", "path": "/x_none_read", "value": "w"}])
    assert upd.properties == {"x_none_read": "w"}


def test_patch_add_existing_readable_needs_update(rules):
    img = image(spl_read_only_prop="v")
    with pytest.raises(exceptions.ReservedProperty):
        apply(rules, "spl_role", img, [{"op": "add", "path": "/spl_read_only_prop", "value": "w"}])


def test_patch_add_new_needs_create(rules):
    with pytest.raises(exceptions.ReservedProperty, match="Attribute 'other' is reserved."):
        apply(rules, "member", image(), [{"op": "add", "path": "/other", "value": "w"}])
    upd = apply(rules, "member", image(), [{"op": "add", "path": "/x_owner_z", "value": "w"}])
    assert upd.properties == {"x_owner_z": "w"}


def test_patch_remove_needs_delete(rules):
    img = image(spl_read_only_prop="v")
    with pytest.raises(exceptions.ReservedProperty):
        apply(rules, "spl_role", img, [{"op": "remove", "path": "/spl_read_only_prop"}])
    upd = apply(rules, "admin", img, [{"op": "remove", "path": "/spl_read_only_prop"}])
    assert upd.properties == {}


def test_patch_keeps_properties_the_caller_cannot_read(rules):
    img = image(x_none_read="hidden", x_owner_a="1")
    upd = apply(rules, "member", img, [{"op": "replace", "path": "/x_owner_a", "value": "2"}])
    assert upd.properties == {"x_none_read": "hidden", "x_owner_a": "2"}


def test_patch_draft4_add_already_present_only_when_readable(rules):
    img = image(x_owner_a="1", x_none_read="v")
    with pytest.raises(exceptions.Conflict, match="already present"):
        apply(rules, "member", img, [{"add": "/x_owner_a", "value": "2"}], media=patch.MEDIA_V20)
    upd = apply(rules, "member", img, [{"add": "/x_none_read", "value": "2"}], media=patch.MEDIA_V20)
    assert upd.properties["x_none_read"] == "2"


def test_base_attributes_are_not_protected(rules):
    upd = apply(rules, "member", image(), [{"op": "replace", "path": "/name", "value": "m"}])
    assert upd.values == {"name": "m"}
