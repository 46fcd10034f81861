"""One real deployment per session: MariaDB, memcached, Keystone, glance-registry and glance-api.

Glance runs with ``[paste_deploy] flavor = keystone`` (keystonemiddleware with its memcached
token cache), both processes on MariaDB, and its endpoints registered in Keystone's catalog,
so every client below finds it the way it would in a cloud.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.helpers import ImageFile, qcow2_bytes
from tests.fixtures.glance_procs import GlanceProcs, start_glance
from tests.fixtures.keystone import Keystone, keystone  # noqa: F401  (session fixtures)
from tests.fixtures.mariadb import mariadb  # noqa: F401
from tests.fixtures.memcached import memcached  # noqa: F401

BIN = Path(os.environ.get("GLANCE_TEST_CLIENT_BIN", Path(__file__).resolve().parents[3] / ".venv" / "bin"))
CLI_TIMEOUT = 300


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.keystone)


@dataclass
class Glance:
    """What the tests need to know about the deployment under test."""

    url: str
    keystone: Keystone
    procs: GlanceProcs


@pytest.fixture(scope="session")
def glance(tmp_path_factory, keystone, mariadb, memcached):  # noqa: F811
    # Keystone first: it checks its virtualenv before anything is started (then starts memcached
    # and MariaDB itself), so a missing Keystone costs nothing but its message.
    database_url = mariadb.create_database("glance", "glance", secrets.token_urlsafe(16))
    procs = start_glance(
        tmp_path_factory.mktemp("glance"),
        flavor="keystone",
        database_url=database_url,
        keystone={
            "public_url": keystone.url,
            "internal_url": keystone.url,
            "password": keystone.glance_password,
            "user": "glance",
            "project": "service",
            "region": "RegionOne",
            "memcached_servers": [memcached.address],
        },
    )
    try:
        keystone.register_image_endpoints(procs.api_url)
        yield Glance(url=procs.api_url, keystone=keystone, procs=procs)
    finally:
        procs.stop()


@pytest.fixture(scope="session")
def clouds_yaml(tmp_path_factory, glance) -> Path:
    return glance.keystone.write_clouds_yaml(tmp_path_factory.mktemp("clouds") / "clouds.yaml")


def _clean_env() -> dict[str, str]:
    """The test runner's environment without any OS_* credentials of the person running it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OS_")}


class Cli:
    """Runs the unmodified CLIs as subprocesses, as a user of the cloud would."""

    def __init__(self, glance: Glance, clouds_yaml: Path):
        self.glance_deployment = glance
        self.clouds_yaml = clouds_yaml

    def _run(self, cmd: list[str], env: dict[str, str], check: bool) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT)
        if check and proc.returncode != 0:
            pytest.fail(
                f"{' '.join(cmd[:4])}... exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
                f"stderr:\n{proc.stderr[-3000:]}"
            )
        return proc

    def openstack(self, *args: str, user: str = "admin", check: bool = True) -> subprocess.CompletedProcess:
        """``openstack --os-cloud USER ARGS`` with our clouds.yaml (OS_CLIENT_CONFIG_FILE)."""
        env = _clean_env() | {"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}
        return self._run([str(BIN / "openstack"), "--os-cloud", user, *args], env, check)

    def openstack_json(self, *args: str, user: str = "admin"):
        return json.loads(self.openstack(*args, "-f", "json", user=user).stdout)

    def glance(self, *args: str, user: str = "admin", check: bool = True) -> subprocess.CompletedProcess:
        """``glance ARGS`` with OS_* variables (glanceclient's shell reads no clouds.yaml)."""
        env = _clean_env() | self.glance_deployment.keystone.env(user)
        return self._run([str(BIN / "glance"), *args], env, check)


@pytest.fixture(scope="session")
def cli(glance, clouds_yaml) -> Cli:
    return Cli(glance, clouds_yaml)


@pytest.fixture
def qcow2_file(tmp_path) -> ImageFile:
    data = qcow2_bytes()
    path = tmp_path / "disk.qcow2"
    path.write_bytes(data)
    return ImageFile(path, data)


@pytest.fixture
def raw_file(tmp_path):
    """Factory: ``raw_file(size)`` writes random bytes (labelled raw: no format to inspect)."""

    def make(size: int = 256 * 1024, name: str = "disk.raw") -> ImageFile:
        data = os.urandom(size)
        path = tmp_path / name
        path.write_bytes(data)
        return ImageFile(path, data)

    return make
