"""The toolkit ships property protections and CORS (issue 18): glance_property_protections
renders upstream's property protection file (0640 root:glance, named in glance-api.conf), and
glance_cors_* the [cors] section; both absent by default."""

from __future__ import annotations

import configparser
from pathlib import Path

import jinja2
import yaml

ROOT = Path(__file__).resolve().parent.parent
# What the templates need besides the variables a test passes (as tests/test_templates.py).
BASE = {
    "glance_api_bind_host": "0.0.0.0",
    "glance_api_port": 9292,
    "glance_api_workers": 2,
    "glance_registry_host": "198.51.100.10",
    "glance_registry_port": 9191,
    "glance_keystone_public_url": "http://198.51.100.10:5000",
    "glance_keystone_internal_url": "http://198.51.100.10:5000",
    "glance_keystone_password": "kspass",
}


def render(name: str, **variables) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROOT / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template(name).render(**{**BASE, **variables})


def parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    return parser


DEFAULTS = yaml.safe_load((ROOT / "roles/glance/defaults/main.yml").read_text())

RULES = [
    {
        "property": "^x_owner_.*",
        "create": ["admin", "member"],
        "read": "admin,member",
        "update": ["admin"],
        "delete": "!",
    },
    {"property": "x_public", "create": "@", "read": ["@"], "update": "admin", "delete": "admin"},
    {"property": ".*", "create": ["admin"], "read": ["admin"], "update": ["admin"], "delete": ["admin"]},
]


def _role_default(name: str, **variables) -> str:
    return jinja2.Template(DEFAULTS[name]).render(**{**DEFAULTS, **variables})


def test_the_file_holds_the_rules_in_order():
    text = render("property-protections.conf.j2", glance_property_protections=RULES)
    parser = configparser.ConfigParser()
    parser.read_string(text)
    assert parser.sections() == ["^x_owner_.*", "x_public", ".*"]
    assert dict(parser["^x_owner_.*"]) == {
        "create": "admin,member",
        "read": "admin,member",
        "update": "admin",
        "delete": "!",
    }
    assert parser["x_public"]["create"] == "@"
    assert parser["x_public"]["read"] == "@"


def test_the_service_loads_the_rendered_file(tmp_path):
    from glance_service.context import RequestContext
    from glance_service.images import property_protections as pp

    path = tmp_path / "property-protections-roles.conf"
    path.write_text(render("property-protections.conf.j2", glance_property_protections=RULES))
    rules = pp.PropertyRules(pp.load_rules(str(path), "roles"), "roles")
    member = RequestContext(project_id="p", roles=["member"])
    assert rules.check(member, "x_owner_a", "create")
    assert not rules.check(member, "x_owner_a", "delete")
    assert rules.check(RequestContext(project_id="p", roles=["reader"]), "x_public", "read")
    assert not rules.check(member, "anything", "read")


def test_api_conf_names_the_file_only_with_rules():
    assert "property_protection" not in render("glance-api.conf.j2")
    conf = parse(
        render(
            "glance-api.conf.j2",
            glance_property_protections=RULES,
            glance_property_protection_rule_format="policies",
            glance_property_protection_file="/etc/glance/property-protections-policies.conf",
        )
    )
    assert conf["DEFAULT"]["property_protection_file"] == "/etc/glance/property-protections-policies.conf"
    assert conf["DEFAULT"]["property_protection_rule_format"] == "policies"


def test_role_writes_the_file_where_upstream_names_it():
    assert DEFAULTS["glance_property_protections"] == []
    assert DEFAULTS["glance_property_protection_rule_format"] == "roles"
    assert _role_default("glance_property_protection_file") == "/etc/glance/property-protections-roles.conf"
    assert (
        _role_default("glance_property_protection_file", glance_property_protection_rule_format="policies")
        == "/etc/glance/property-protections-policies.conf"
    )
    tasks = yaml.safe_load((ROOT / "roles/glance/tasks/config.yml").read_text())
    write = next(t for t in tasks if t["name"] == "Write the property protection file")
    module = write["ansible.builtin.template"]
    assert module["src"].endswith("/property-protections.conf.j2")
    assert module["dest"] == "{{ glance_property_protection_file }}"
    assert (module["owner"], module["group"], module["mode"]) == ("root", "{{ glance_group }}", "0640")
    assert write["notify"] == "Reload glance-api"


def test_cors_section_only_with_origins():
    assert "[cors]" not in render("glance-api.conf.j2")
    conf = parse(
        render(
            "glance-api.conf.j2",
            glance_cors_allowed_origins=["https://dash.example.org", "https://other.example.org"],
        )
    )
    assert conf["cors"]["allowed_origin"] == "https://dash.example.org,https://other.example.org"
    assert conf["cors"]["allow_credentials"] == "True"
    assert conf["cors"]["max_age"] == "3600"
    # Upstream Glance's header and method lists stay the service's defaults.
    assert "expose_headers" not in conf["cors"]
    assert "allow_methods" not in conf["cors"]
    conf = parse(
        render(
            "glance-api.conf.j2",
            glance_cors_allowed_origins=["https://dash.example.org"],
            glance_cors_allow_credentials=False,
            glance_cors_allow_methods=["GET", "HEAD"],
            glance_cors_allow_headers=["X-Auth-Token"],
            glance_cors_expose_headers=["X-OpenStack-Request-ID"],
            glance_cors_max_age=60,
        )
    )
    assert conf["cors"]["allow_credentials"] == "False"
    assert conf["cors"]["allow_methods"] == "GET,HEAD"
    assert conf["cors"]["allow_headers"] == "X-Auth-Token"
    assert conf["cors"]["expose_headers"] == "X-OpenStack-Request-ID"
    assert conf["cors"]["max_age"] == "60"
