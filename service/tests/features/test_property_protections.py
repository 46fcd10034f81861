"""Property protections and CORS against real glance-registry + glance-api processes.

Property protections (``[DEFAULT] property_protection_file``), in both rule formats, with the
rules of upstream Glance's own test files (``glance/tests/etc/property-protections*.conf``),
and the answers upstream's functional tests expect (``tests/functional/v2/
test_property_protection.py``): 403 ``Attribute '<name>' is reserved.`` for a refused create,
update or delete; a property the caller may not read is not shown, in the image and in lists.
CORS (``[cors]``, oslo.middleware's middleware with upstream's defaults): preflight and simple
requests from an allowed origin and from another one. Trusted-headers mode sets the roles.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fixtures.glance_procs import GlanceProcs, GlanceStartError, start_glance

PATCH_MEDIA = "application/openstack-images-v2.1-json-patch"
ORIGIN = "https://dashboard.example.org"

ROLES_RULES = """\
[^x_owner_.*]
create = admin,member
read = admin,member
update = admin,member
delete = admin,member

[spl_create_prop]
create = admin,spl_role
read = admin,spl_role
update = admin
delete = admin

[spl_read_prop]
create = admin,spl_role
read = admin,spl_role
update = admin
delete = admin

[spl_update_prop]
create = admin,spl_role
read = admin,spl_role
update = admin,spl_role
delete = admin

[spl_delete_prop]
create = admin,spl_role
read = admin,spl_role
update = admin
delete = admin,spl_role

[^x_all_permitted.*]
create = @
read = @
update = @
delete = @

[^x_none_permitted.*]
create = !
read = !
update = !
delete = !

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

[.*]
create = admin
read = admin
update = admin
delete = admin
"""

POLICIES_RULES = """\
[spl_creator_policy]
create = glance_creator
read = glance_creator
update = context_is_admin
delete = context_is_admin

[^x_all_permitted.*]
create = @
read = @
update = @
delete = @

[x_none_read]
create = context_is_admin
read = !
update = !
delete = !

[.*]
create = context_is_admin
read = context_is_admin
update = context_is_admin
delete = context_is_admin
"""

POLICY_FILE = """\
"glance_creator": "role:admin or role:spl_role"
"""


class Caller:
    """Raw HTTP as one identity of the shared project (trusted headers)."""

    def __init__(self, base_url: str, project: str, roles: str):
        self.base_url = base_url
        self.project = project
        self.roles = roles

    def request(self, method: str, path: str, *, headers: dict | None = None, **kw) -> requests.Response:
        h = {"X-Project-Id": self.project, "X-User-Id": "u-" + self.roles, "X-Roles": self.roles}
        h.update(headers or {})
        return requests.request(method, self.base_url + path, headers=h, timeout=30, **kw)

    def create(self, **props) -> requests.Response:
        body = {"name": "pp-" + uuid.uuid4().hex[:8], "disk_format": "raw", "container_format": "bare"}
        body.update(props)
        return self.request("POST", "/v2/images", json=body)

    def show(self, image_id: str) -> dict:
        resp = self.request("GET", f"/v2/images/{image_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def patch(self, image_id: str, ops: list) -> requests.Response:
        return self.request(
            "PATCH", f"/v2/images/{image_id}", json=ops, headers={"Content-Type": PATCH_MEDIA}
        )


def _start(workdir: Path, rules: str, rule_format: str, extra: dict | None = None) -> GlanceProcs:
    workdir.mkdir(parents=True, exist_ok=True)
    rules_file = workdir / f"property-protections-{rule_format}.conf"
    rules_file.write_text(rules)
    api = {
        "DEFAULT": {
            "property_protection_file": str(rules_file),
            "property_protection_rule_format": rule_format,
        },
        **(extra or {}),
    }
    return start_glance(workdir, workers=1, extra_api=api)


@pytest.fixture(scope="module")
def roles_glance(tmp_path_factory) -> Iterator[GlanceProcs]:
    procs = _start(
        tmp_path_factory.mktemp("pp-roles"),
        ROLES_RULES,
        "roles",
        {"cors": {"allowed_origin": ORIGIN}},
    )
    yield procs
    procs.stop()


@pytest.fixture(scope="module")
def policies_glance(tmp_path_factory) -> Iterator[GlanceProcs]:
    workdir = tmp_path_factory.mktemp("pp-policies")
    policy = workdir / "policy.yaml"
    policy.write_text(POLICY_FILE)
    procs = _start(workdir, POLICIES_RULES, "policies", {"oslo_policy": {"policy_file": str(policy)}})
    yield procs
    procs.stop()


@pytest.fixture
def as_roles(roles_glance):
    project = uuid.uuid4().hex
    return lambda roles: Caller(roles_glance.api_url, project, roles)


@pytest.fixture
def as_policies(policies_glance):
    project = uuid.uuid4().hex
    return lambda roles: Caller(policies_glance.api_url, project, roles)


def _reserved(resp: requests.Response, name: str) -> None:
    assert resp.status_code == 403, resp.text
    assert f"Attribute '{name}' is reserved." in html.unescape(resp.text)


# -- roles ------------------------------------------------------------------------------------


def test_roles_create_allowed_and_refused(as_roles):
    member = as_roles("reader,member")
    resp = member.create(x_owner_foo="bar_value")
    assert resp.status_code == 201, resp.text
    assert resp.json()["x_owner_foo"] == "bar_value"
    # Only [.*] matches: admin only.
    _reserved(member.create(x_owner_foo="o", foo="bar"), "foo")
    assert as_roles("admin,member,reader").create(foo="bar").status_code == 201
    # A special role a rule names.
    resp = as_roles("reader,member,spl_role").create(spl_create_prop="c")
    assert resp.status_code == 201, resp.text


def test_roles_at_and_bang(as_roles):
    resp = as_roles("reader,member").create(x_all_permitted_1="1")
    assert resp.status_code == 201, resp.text
    _reserved(as_roles("admin,member,reader").create(x_none_permitted_1="1"), "x_none_permitted_1")


def test_roles_role_names_are_case_insensitive(as_roles):
    resp = as_roles("reader,member").create(x_case_insensitive="1")
    assert resp.status_code == 201, resp.text


def test_roles_read_is_hidden_from_show_and_list(as_roles):
    admin = as_roles("admin,member,reader")
    image = admin.create(spl_read_prop="read_value").json()
    assert as_roles("reader,member,spl_role").show(image["id"])["spl_read_prop"] == "read_value"
    member = as_roles("reader,member")
    assert "spl_read_prop" not in member.show(image["id"])
    listed = member.request("GET", "/v2/images").json()["images"]
    mine = [i for i in listed if i["id"] == image["id"]]
    assert mine and "spl_read_prop" not in mine[0]
    assert (
        "spl_read_prop"
        in [i for i in admin.request("GET", "/v2/images").json()["images"] if i["id"] == image["id"]][0]
    )


def test_roles_update(as_roles):
    image = as_roles("admin,member,reader").create(spl_update_prop="initial", spl_read_prop="r").json()
    spl = as_roles("reader,member,spl_role")
    resp = spl.patch(image["id"], [{"op": "replace", "path": "/spl_update_prop", "value": "updated"}])
    assert resp.status_code == 200, resp.text
    assert resp.json()["spl_update_prop"] == "updated"
    resp = spl.patch(image["id"], [{"op": "replace", "path": "/spl_read_prop", "value": "w"}])
    _reserved(resp, "spl_read_prop")
    # Nothing of a refused PATCH is saved.
    assert spl.show(image["id"])["spl_read_prop"] == "r"


def test_roles_delete(as_roles):
    image = as_roles("admin,member,reader").create(spl_delete_prop="d", spl_create_prop="c").json()
    spl = as_roles("reader,member,spl_role")
    resp = spl.patch(image["id"], [{"op": "remove", "path": "/spl_delete_prop"}])
    assert resp.status_code == 200, resp.text
    assert "spl_delete_prop" not in resp.json()
    _reserved(spl.patch(image["id"], [{"op": "remove", "path": "/spl_create_prop"}]), "spl_create_prop")


def test_roles_add_new_property_needs_create(as_roles):
    member = as_roles("reader,member")
    image = member.create().json()
    _reserved(member.patch(image["id"], [{"op": "add", "path": "/foo", "value": "1"}]), "foo")
    resp = member.patch(image["id"], [{"op": "add", "path": "/x_owner_z", "value": "1"}])
    assert resp.status_code == 200 and resp.json()["x_owner_z"] == "1"


def test_roles_unreadable_property_is_kept_hidden_and_filterable(as_roles):
    admin = as_roles("admin,member,reader")
    marker = uuid.uuid4().hex
    resp = admin.create(x_none_read=marker, x_owner_a="1")
    assert resp.status_code == 201, resp.text
    image = resp.json()
    # Created (create is allowed) but nobody may read it, the creator included.
    assert "x_none_read" not in image
    # A property nobody can see does not exist for PATCH replace/remove (409, as upstream).
    resp = admin.patch(image["id"], [{"op": "replace", "path": "/x_none_read", "value": "w"}])
    assert resp.status_code == 409 and "Property x_none_read does not exist." in html.unescape(resp.text)
    resp = admin.patch(image["id"], [{"op": "replace", "path": "/x_owner_a", "value": "2"}])
    assert resp.status_code == 200 and "x_none_read" not in resp.json()
    # Still recorded: a list filtered on it finds the image (upstream filters in the database).
    found = admin.request("GET", f"/v2/images?x_none_read={marker}").json()["images"]
    assert [i["id"] for i in found] == [image["id"]]
    assert "x_none_read" not in found[0]


def test_os_glance_properties_stay_reserved(as_roles):
    _reserved(as_roles("admin,member,reader").create(os_glance_foo="1"), "os_glance_foo")


def test_a_malformed_file_stops_glance_api(roles_glance, tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[x_owner_.*]\ncreate = admin\nread = admin\nupdate = @,!\ndelete = admin\n")
    with pytest.raises(GlanceStartError) as err:
        roles_glance.add_api(tmp_path / "node", extra_api={"DEFAULT": {"property_protection_file": str(bad)}})
    assert "'@' and '!' are mutually exclusive" in str(err.value)
    with pytest.raises(GlanceStartError) as err:
        roles_glance.add_api(
            tmp_path / "node2",
            extra_api={"DEFAULT": {"property_protection_file": str(tmp_path / "nope.conf")}},
        )
    assert "Couldn't find property protection file" in str(err.value)


# -- policies --------------------------------------------------------------------------------


def test_policies_create(as_policies):
    resp = as_policies("reader,member,spl_role").create(spl_creator_policy="c")
    assert resp.status_code == 201, resp.text
    assert resp.json()["spl_creator_policy"] == "c"
    _reserved(as_policies("reader,member").create(spl_creator_policy="c"), "spl_creator_policy")
    _reserved(as_policies("reader,member").create(other="c"), "other")
    assert as_policies("admin,member,reader").create(other="c").status_code == 201
    assert as_policies("reader,member").create(x_all_permitted_2="1").status_code == 201


def test_policies_read_update_delete(as_policies):
    image = as_policies("reader,member,spl_role").create(spl_creator_policy="c").json()
    member = as_policies("reader,member")
    assert "spl_creator_policy" not in member.show(image["id"])
    spl = as_policies("reader,member,spl_role")
    assert spl.show(image["id"])["spl_creator_policy"] == "c"
    _reserved(
        spl.patch(image["id"], [{"op": "replace", "path": "/spl_creator_policy", "value": "u"}]),
        "spl_creator_policy",
    )
    _reserved(spl.patch(image["id"], [{"op": "remove", "path": "/spl_creator_policy"}]), "spl_creator_policy")
    admin = as_policies("admin,member,reader")
    resp = admin.patch(image["id"], [{"op": "replace", "path": "/spl_creator_policy", "value": "u"}])
    assert resp.status_code == 200 and resp.json()["spl_creator_policy"] == "u"
    resp = admin.patch(image["id"], [{"op": "remove", "path": "/spl_creator_policy"}])
    assert resp.status_code == 200 and "spl_creator_policy" not in resp.json()


def test_policies_none_read(as_policies):
    resp = as_policies("admin,member,reader").create(x_none_read="x")
    assert resp.status_code == 201 and "x_none_read" not in resp.json()
    _reserved(as_policies("reader,member").create(x_none_read="x"), "x_none_read")


# -- CORS ------------------------------------------------------------------------------------


def test_cors_preflight_from_an_allowed_origin(roles_glance):
    resp = requests.options(
        roles_glance.api_url + "/v2/images",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "X-Auth-Token,Content-Type",
        },
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert resp.headers["Access-Control-Max-Age"] == "3600"
    assert resp.headers["Access-Control-Allow-Methods"] == "PATCH"
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"x-auth-token", "content-type"} <= allowed


def test_cors_preflight_with_a_method_upstream_does_not_allow(roles_glance):
    # Upstream's allow_methods: GET, PUT, POST, DELETE, PATCH (no HEAD, no TRACE).
    resp = requests.options(
        roles_glance.api_url + "/v2/images",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "TRACE"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_cors_preflight_from_another_origin(roles_glance):
    resp = requests.options(
        roles_glance.api_url + "/v2/images",
        headers={"Origin": "https://evil.example.net", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_cors_simple_request(roles_glance):
    caller = Caller(roles_glance.api_url, uuid.uuid4().hex, "reader,member")
    resp = caller.request("GET", "/v2/images", headers={"Origin": ORIGIN})
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-OpenStack-Request-ID", "X-Image-Meta-Checksum", "X-Subject-Token"} <= exposed
    assert resp.headers["Vary"].lower().find("origin") >= 0
    other = caller.request("GET", "/v2/images", headers={"Origin": "https://evil.example.net"})
    assert other.status_code == 200
    assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_off_without_allowed_origin(policies_glance):
    resp = requests.options(
        policies_glance.api_url + "/v2/images",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in resp.headers
    caller = Caller(policies_glance.api_url, uuid.uuid4().hex, "reader,member")
    resp = caller.request("GET", "/v2/images", headers={"Origin": ORIGIN})
    assert resp.status_code == 200 and "Access-Control-Allow-Origin" not in resp.headers
