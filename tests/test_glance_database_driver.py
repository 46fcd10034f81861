"""The service's MariaDB driver (issue 17): roles/glance renders mysql+mysqldb:// (mysqlclient)
by default, with the same utf8mb4 charset as before, and mysql+pymysql:// on request; the
role installs mysqlclient's shared library where the service opens the database; the deploy
host has what building mysqlclient needs, and the pins carry it."""

from __future__ import annotations

import re

import jinja2.nativetypes
import pytest
import yaml
from test_template_stores import evaluate, role_vars
from test_templates import ROOT

DEFAULTS = yaml.safe_load((ROOT / "roles/glance/defaults/main.yml").read_text())
DB = {
    "glance_database_user": "glance",
    "glance_database_password": "p@ss/word",
    "glance_database_host": "198.51.100.10",
    "glance_database_port": 3306,
    "glance_database_name": "glance",
}


def connection(**extra) -> str:
    variables = {"glance_database_driver": DEFAULTS["glance_database_driver"], **DB, **extra}
    return evaluate(role_vars()["_glance_database_connection"], variables)


def test_the_default_connection_uses_mysqlclient_with_utf8mb4() -> None:
    assert DEFAULTS["glance_database_driver"] == "mysqldb"
    assert connection() == "mysql+mysqldb://glance:p%40ss/word@198.51.100.10:3306/glance?charset=utf8mb4"


def test_pymysql_can_be_chosen() -> None:
    assert connection(glance_database_driver="pymysql").startswith("mysql+pymysql://glance:")


@pytest.mark.parametrize(
    ("registry", "api", "data_api", "expected"),
    [
        (True, False, "registry", True),
        (False, True, "registry", False),  # glance-api holds no database credentials
        (False, True, "database", True),  # direct mode
        (True, True, "registry", True),
    ],
)
def test_libmariadb_where_the_database_is_opened(registry, api, data_api, expected) -> None:
    env = jinja2.nativetypes.NativeEnvironment(undefined=jinja2.StrictUndefined)
    env.filters["bool"] = bool  # Ansible's, for the booleans given here
    rule = env.from_string(role_vars()["_glance_uses_database"])
    assert rule.render(_glance_is_registry=registry, _glance_is_api=api, glance_data_api=data_api) is expected
    tasks = yaml.safe_load((ROOT / "roles/glance/tasks/install.yml").read_text())
    task = next(
        t
        for t in tasks
        if (t.get("ansible.builtin.apt") or {}).get("name") == "{{ _glance_database_client_packages }}"
    )
    assert task["when"] == ["_glance_uses_database | bool", "glance_database_driver == 'mysqldb'"]
    for distribution in ("Debian", "Ubuntu"):
        packages = yaml.safe_load((ROOT / f"roles/glance/vars/{distribution}.yml").read_text())
        assert packages["_glance_database_client_packages"] == ["libmariadb3"]


def test_the_deploy_host_can_build_mysqlclient() -> None:
    script = (ROOT / "scripts/host-deps.sh").read_text()
    packages = set(re.search(r"packages=\((.*?)\n\)", script, re.S).group(1).split())
    assert {"libmariadb-dev", "pkg-config", "build-essential", "python3-dev"} <= packages


def test_mysqlclient_is_pinned_next_to_pymysql() -> None:
    pins = (ROOT / "service/requirements.txt").read_text().splitlines()
    assert any(re.fullmatch(r"mysqlclient==[\d.]+", line) for line in pins)
    assert any(re.fullmatch(r"PyMySQL==[\d.]+", line) for line in pins)  # Keystone, operator URLs
    pyproject = (ROOT / "service/pyproject.toml").read_text()
    assert '"mysqlclient>=' in pyproject and '"PyMySQL>=' in pyproject
