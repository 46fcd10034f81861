"""The previews `--diff` shows: each config file that holds secrets is rendered a second time
with ``*_config_redact`` true. A preview must hold no secret, and must differ from the real
file only in the secret values, so that its diff shows every other change."""

from __future__ import annotations

import configparser
from pathlib import Path

import jinja2
import pytest
from test_templates import BASE

ROOT = Path(__file__).resolve().parent.parent
SECRETS = ["kspass-7", "dbpass-8", "idsecret-9", "s3access-10", "s3secret-11", "ldappass-12", "swkey-13"]

GLANCE = {
    **BASE,
    "glance_database_connection": "mysql+pymysql://glance:dbpass-8@198.51.100.10:3306/glance?charset=utf8mb4",
    "glance_keystone_password": "kspass-7",
    "glance_registry_identity_secret": "idsecret-9",
    "glance_store_backend": "s3",
    "glance_stores": [
        {"name": "cheap", "type": "s3", "s3_store_host": "http://198.51.100.50:7480"},
        {"name": "local", "type": "file"},
    ],
    "glance_s3_store_access_key": "s3access-10",
    "glance_s3_store_secret_key": "s3secret-11",
    "glance_api_conf_overrides": {"ldap": {"password": "ldappass-12", "url": "ldap://h"}},
    "glance_registry_conf_overrides": {"ldap": {"password": "ldappass-12", "url": "ldap://h"}},
}
KEYSTONE = {
    "ansible_managed": "managed",
    "keystone_debug": False,
    "_keystone_database_connection": "mysql+pymysql://keystone:dbpass-8@198.51.100.10:3306/keystone",
    "_keystone_etc": "/etc/keystone",
    "keystone_memcached_servers": ["127.0.0.1:11211"],
    "keystone_conf_overrides": {"ldap": {"password": "ldappass-12", "url": "ldap://h"}},
}
# (template directory, template, variables, the flag that asks for the preview)
CASES = {
    "glance-api": (ROOT / "templates", "glance-api.conf.j2", GLANCE, "glance_config_redact"),
    "glance-api-database-mode": (
        ROOT / "templates",
        "glance-api.conf.j2",
        {**GLANCE, "glance_data_api": "database"},
        "glance_config_redact",
    ),
    "glance-registry": (ROOT / "templates", "glance-registry.conf.j2", GLANCE, "glance_config_redact"),
    "glance-swift": (
        ROOT / "templates",
        "glance-swift.conf.j2",
        {
            **GLANCE,
            "glance_stores": [{"name": "objects", "type": "swift"}],
            "glance_swift_store_auth_address": "http://198.51.100.10:5000/v3",
            "glance_swift_store_user": "service:glance",
            "glance_swift_store_key": "swkey-13",
        },
        "glance_config_redact",
    ),
    "keystone": (ROOT / "roles/keystone/templates", "keystone.conf.j2", KEYSTONE, "keystone_config_redact"),
}


def render(directory: Path, name: str, variables: dict) -> str:
    # As Ansible's template module renders (trim_blocks on).
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
    )
    return env.get_template(name).render(**variables)


def parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    return parser


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_preview_holds_no_secret(case: str) -> None:
    directory, name, variables, flag = CASES[case]
    real = render(directory, name, variables)
    preview = render(directory, name, {**variables, flag: True})
    assert any(secret in real for secret in SECRETS), "the case must put secrets in the real file"
    for secret in SECRETS:
        assert secret not in preview, f"{secret} is in the preview of {name}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_preview_differs_only_in_secret_values(case: str) -> None:
    directory, name, variables, flag = CASES[case]
    real = render(directory, name, variables).splitlines()
    preview = render(directory, name, {**variables, flag: True}).splitlines()
    assert len(real) == len(preview)
    changed = [(a, b) for a, b in zip(real, preview, strict=True) if a != b]
    assert changed, "nothing was masked"
    for real_line, preview_line in changed:
        option, _, value = real_line.partition(" = ")
        assert preview_line.startswith(option + " = ")
        assert "<redacted>" in preview_line
        assert any(secret in value for secret in SECRETS), f"{option} was masked but holds no secret"


def test_a_database_url_keeps_everything_but_the_password() -> None:
    directory, name, variables, flag = CASES["glance-registry"]
    conf = parse(render(directory, name, {**variables, flag: True}))
    assert conf["database"]["connection"] == (
        "mysql+pymysql://glance:<redacted>@198.51.100.10:3306/glance?charset=utf8mb4"
    )


def test_a_password_with_url_specials_does_not_leak() -> None:
    # The roles urlencode the password, but a hand-written URL may not be: whatever sits between
    # the user's ':' and the last '@' is masked.
    directory, name, variables, flag = CASES["keystone"]
    url = "mysql+pymysql://keystone:p@ss:w/rd@198.51.100.10/keystone"
    conf = parse(render(directory, name, {**variables, "_keystone_database_connection": url, flag: True}))
    assert conf["database"]["connection"] == "mysql+pymysql://keystone:<redacted>@198.51.100.10/keystone"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_real_file_is_what_it_was_without_the_flag(case: str) -> None:
    directory, name, variables, flag = CASES[case]
    assert render(directory, name, variables) == render(directory, name, {**variables, flag: False})
