"""The config templates render with plain Jinja2 (the service's tests do the same) into files
oslo.config reads, with the options the playbooks mean."""

from __future__ import annotations

import configparser
from pathlib import Path

import jinja2
import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE = {
    "glance_api_bind_host": "0.0.0.0",
    "glance_api_port": 9292,
    "glance_api_workers": 2,
    "glance_registry_bind_host": "0.0.0.0",
    "glance_registry_host": "198.51.100.10",
    "glance_registry_port": 9191,
    "glance_registry_workers": 2,
    "glance_database_connection": "mysql+pymysql://glance:s3cret@198.51.100.10:3306/glance?charset=utf8mb4",
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
    # oslo.config accepts a section more than once (the overrides come last and win);
    # configparser needs strict=False for that, and keeps the last value.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    return parser


def test_api_defaults_registry_and_keystone() -> None:
    conf = parse(render("glance-api.conf.j2"))
    assert conf["DEFAULT"]["data_api"] == "registry"
    assert conf["DEFAULT"]["registry_host"] == "198.51.100.10"
    assert conf["paste_deploy"]["flavor"] == "keystone"
    assert conf["keystone_authtoken"]["password"] == "kspass"
    assert conf["keystone_authtoken"]["auth_url"] == "http://198.51.100.10:5000"
    # Only the registry holds database credentials in the default mode.
    assert not conf.has_section("database")


def test_no_store_named_renders_the_single_store_form() -> None:
    # The service's own tests render without store variables and rely on this form.
    conf = parse(render("glance-api.conf.j2"))
    assert conf["glance_store"]["stores"] == "file,http"
    assert conf["glance_store"]["default_store"] == "file"
    assert "enabled_backends" not in conf["DEFAULT"]


@pytest.mark.parametrize("name", ["glance-api.conf.j2", "glance-registry.conf.j2"])
def test_registry_identity_secret_on_both_sides_or_neither(name: str) -> None:
    # The API signs with it and the registry checks with it: one without the other would make
    # the registry refuse (or never use) the signature.
    assert "registry_identity_secret" not in parse(render(name))["DEFAULT"]
    conf = parse(render(name, glance_registry_identity_secret="shared-48-chars"))
    assert conf["DEFAULT"]["registry_identity_secret"] == "shared-48-chars"


def test_api_database_mode_gets_the_connection() -> None:
    conf = parse(render("glance-api.conf.j2", glance_data_api="database"))
    assert conf["database"]["connection"].startswith("mysql+pymysql://glance:")


def test_registry_has_the_database_and_auth() -> None:
    conf = parse(render("glance-registry.conf.j2"))
    assert conf["database"]["connection"] == BASE["glance_database_connection"]
    assert conf["DEFAULT"]["bind_port"] == "9191"
    assert conf["keystone_authtoken"]["username"] == "glance"


@pytest.mark.parametrize("name", ["glance-api.conf.j2", "glance-registry.conf.j2"])
def test_overrides_win(name: str) -> None:
    key = "glance_api_conf_overrides" if "api" in name else "glance_registry_conf_overrides"
    text = render(name, **{key: {"DEFAULT": {"workers": 7}, "oslo_policy": {"policy_file": "p.yaml"}}})
    conf = parse(text)
    assert conf["DEFAULT"]["workers"] == "7"
    assert conf["oslo_policy"]["policy_file"] == "p.yaml"


def test_proxy_headers_parsing_off_and_no_public_endpoint_by_default() -> None:
    # No load balancer in front by default: X-Forwarded-* from clients are not trusted, and the
    # versions document takes the URL of the request.
    conf = parse(render("glance-api.conf.j2"))
    assert conf["oslo_middleware"]["enable_proxy_headers_parsing"] == "False"
    assert "public_endpoint" not in conf["DEFAULT"]


def test_behind_an_https_load_balancer() -> None:
    conf = parse(
        render(
            "glance-api.conf.j2",
            glance_enable_proxy_headers_parsing=True,
            glance_public_endpoint="https://images.example.com:9292",
        )
    )
    assert conf["oslo_middleware"]["enable_proxy_headers_parsing"] == "True"
    assert conf["DEFAULT"]["public_endpoint"] == "https://images.example.com:9292"


def test_noauth_flavor_has_no_keystone_section() -> None:
    conf = parse(render("glance-api.conf.j2", glance_auth_flavor=""))
    assert not conf.has_section("keystone_authtoken")


def test_memcached_servers_joined() -> None:
    conf = parse(render("glance-api.conf.j2", glance_memcached_servers=["10.0.0.1:11211", "10.0.0.2:11211"]))
    assert conf["keystone_authtoken"]["memcached_servers"] == "10.0.0.1:11211,10.0.0.2:11211"


@pytest.mark.parametrize("template", ["glance-api.conf.j2", "glance-registry.conf.j2"])
def test_metadata_cache_servers(template: str) -> None:
    """[metadata_cache] memcached_servers: glance_metadata_cache_servers, which defaults to
    glance_memcached_servers (roles/glance/defaults); empty: no section, the cache is off."""
    servers = ["10.0.0.1:11211", "10.0.0.2:11211"]
    conf = parse(render(template, glance_memcached_servers=servers))
    assert conf["metadata_cache"]["memcached_servers"] == "10.0.0.1:11211,10.0.0.2:11211"
    conf = parse(render(template, glance_auth_flavor="", glance_metadata_cache_servers=servers[1:]))
    assert conf["metadata_cache"]["memcached_servers"] == "10.0.0.2:11211"
    conf = parse(render(template, glance_memcached_servers=servers, glance_metadata_cache_servers=[]))
    assert not conf.has_section("metadata_cache")
    assert not parse(render(template)).has_section("metadata_cache")


@pytest.mark.parametrize(
    ("unit", "command"),
    [("glance-api.service.j2", "glance-api"), ("glance-registry.service.j2", "glance-registry")],
)
def test_units(unit: str, command: str) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(render(unit, glance_venv="/opt/glance"))
    service = parser["Service"]
    assert service["User"] == "glance"
    assert service["ExecStart"] == f"/opt/glance/bin/{command} --config-file /etc/glance/{command}.conf"
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_image_cache_on_when_a_directory_is_given_off_when_empty() -> None:
    # With image_cache_dir the service advertises Image API 2.18 as CURRENT (as Glance 33 does).
    conf = parse(render("glance-api.conf.j2", glance_image_cache_dir="/var/lib/glance/image-cache"))
    assert conf["DEFAULT"]["image_cache_dir"] == "/var/lib/glance/image-cache"
    assert conf["DEFAULT"]["image_cache_max_size"] == "10737418240"
    off = parse(render("glance-api.conf.j2", glance_image_cache_dir=""))
    assert "image_cache_dir" not in off["DEFAULT"]


def test_role_default_turns_the_image_cache_on() -> None:
    import yaml

    defaults = yaml.safe_load((ROOT / "roles/glance/defaults/main.yml").read_text())
    specs = yaml.safe_load((ROOT / "roles/glance/meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    for name in ("glance_image_cache_dir", "glance_image_cache_max_size"):
        assert options[name]["default"] == defaults[name]
    assert defaults["glance_image_cache_dir"]


def test_http_store_takes_its_name_from_the_inventory() -> None:
    stores = [{"name": "file", "type": "file"}]
    conf = parse(render("glance-api.conf.j2", glance_stores=stores, glance_default_backend="file"))
    assert conf["DEFAULT"]["enabled_backends"] == "file:file, http:http"
    named = parse(
        render(
            "glance-api.conf.j2",
            glance_stores=stores,
            glance_default_backend="file",
            glance_http_store_name="web",
        )
    )
    assert named["DEFAULT"]["enabled_backends"] == "file:file, web:http"


@pytest.mark.parametrize(
    ("template", "port_var", "port"),
    [
        ("glance-api.conf.j2", "glance_metrics_port", 9293),
        ("glance-registry.conf.j2", "glance_metrics_registry_port", 9192),
    ],
)
def test_metrics_off_by_default_on_at_the_management_address(template: str, port_var: str, port: int) -> None:
    # issue 18: no [metrics] section unless enabled (the service's default: off).
    assert not parse(render(template)).has_section("metrics")
    conf = parse(render(template, glance_metrics_enabled=True, glance_metrics_bind_host="198.51.100.11"))
    assert conf["metrics"]["enable_prometheus"] == "true"
    assert conf["metrics"]["bind_host"] == "198.51.100.11"
    assert conf["metrics"]["port"] == str(port)
    conf = parse(
        render(template, glance_metrics_enabled=True, glance_metrics_bind_host="10.0.0.1", **{port_var: 9999})
    )
    assert conf["metrics"]["port"] == "9999"


@pytest.mark.parametrize("unit", ["glance-api.service.j2", "glance-registry.service.j2"])
def test_units_give_the_metrics_a_private_runtime_directory(unit: str) -> None:
    text = render(unit)
    assert f"RuntimeDirectory={unit.removesuffix('.service.j2')}\n" in text
    assert "RuntimeDirectoryMode=0700\n" in text


def test_registry_without_a_master_is_watched_by_systemd() -> None:
    # glance_registry_workers 0: one serving process, its loop's heartbeat is systemd's
    # watchdog. With a master there is none: the master sends no WATCHDOG=1 and would be killed.
    solo = configparser.ConfigParser(interpolation=None)
    solo.read_string(render("glance-registry.service.j2", glance_registry_workers=0))
    assert solo["Service"]["WatchdogSec"] == "60"
    assert solo["Service"]["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert solo["Service"]["Restart"] == "on-failure"
    off = render("glance-registry.service.j2", glance_registry_workers=0, glance_registry_watchdog_sec=0)
    assert "WatchdogSec" not in off
    assert "WatchdogSec" not in render("glance-registry.service.j2", glance_registry_workers=2)


def test_registry_serves_without_a_master_when_the_metadata_cache_is_on() -> None:
    import yaml

    defaults = yaml.safe_load((ROOT / "roles/glance/defaults/main.yml").read_text())
    env = jinja2.Environment()
    workers = defaults["glance_registry_workers"]
    assert env.from_string(workers).render(glance_metadata_cache_servers=["10.0.0.1:11211"]) == "0"
    assert env.from_string(workers).render(glance_metadata_cache_servers=[]) == "2"
