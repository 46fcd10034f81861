"""The shared servers both image services sit behind: memcached, MariaDB and a real Keystone.

They come from the service's test fixtures (service/tests/fixtures/*.py), used as plain modules.
"""

from __future__ import annotations

import importlib
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVICE = REPO / "service"


def _fixture(name: str):
    """Imports ``service/tests/fixtures/<name>.py`` as ``tests.fixtures.<name>``, the name the
    fixtures import each other by (as bench/stores.py does)."""
    if str(SERVICE) not in sys.path:
        sys.path.insert(0, str(SERVICE))
    return importlib.import_module(f"tests.fixtures.{name}")


@dataclass(frozen=True)
class ServiceAuth:
    """What an image service needs in ``[keystone_authtoken]``."""

    auth_url: str
    password: str
    memcached_servers: str
    username: str = "glance"
    project_name: str = "service"

    def authtoken_options(self) -> dict[str, str]:
        return {
            "www_authenticate_uri": self.auth_url,
            "auth_url": self.auth_url,
            "auth_type": "password",
            "project_domain_name": "Default",
            "user_domain_name": "Default",
            "project_name": self.project_name,
            "username": self.username,
            "password": self.password,
            "region_name": "RegionOne",
            "memcached_servers": self.memcached_servers,
            "service_token_roles_required": "true",
        }


class Infra:
    """Starts memcached, MariaDB (when asked) and Keystone; stops them all by PID."""

    def __init__(self, workdir: Path, mariadb: bool, ours_driver: str = "mysqldb"):
        self.workdir = workdir
        self.want_mariadb = mariadb
        # ours' MariaDB driver: mysqlclient as the toolkit renders it; pymysql for an A/B run
        self.ours_driver = ours_driver
        self.memcached = None
        self.mariadb = None
        self.keystone = None
        self._stoppers: list = []

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        mc_mod = _fixture("memcached")
        self.memcached = mc_mod.start_memcached()
        self._stoppers.append(self.memcached.stop)
        keystone_db = None
        if self.want_mariadb:
            self.mariadb = self._start_mariadb()
            keystone_db = self.database_url("keystone", driver="pymysql")
        ks_mod = _fixture("keystone")
        self.keystone = ks_mod.start_keystone(
            self.workdir / "keystone",
            database_url=keystone_db,
            memcached_servers=self.memcached.address,
        )
        self._stoppers.append(self.keystone.stop)

    def _start_mariadb(self):
        mod = _fixture("mariadb")
        self.workdir.mkdir(parents=True, exist_ok=True)
        server = mod.start_mariadb(self.workdir)
        self._stoppers.append(server.stop)
        return server

    def database_url(self, name: str, driver: str = "pymysql") -> str:
        """A fresh MariaDB database and user of that name: ``mysql+DRIVER://...``. PyMySQL
        for what runs in its own virtualenv (Keystone, upstream Glance)."""
        return self.mariadb.create_database(name, name, secrets.token_urlsafe(16), driver=driver)

    def service_auth(self) -> ServiceAuth:
        return ServiceAuth(
            auth_url=self.keystone.url,
            password=self.keystone.glance_password,
            memcached_servers=self.memcached.address,
        )

    def process_roots(self) -> dict[str, int]:
        """The shared servers' PIDs (each counted with its children), for CPU accounting."""
        out = {}
        if self.keystone:
            out["keystone"] = self.keystone.proc.pid
        if self.memcached:
            out["memcached"] = self.memcached.proc.pid
        if self.mariadb:
            out["mariadb"] = self.mariadb.pid
        return out

    def token(self, user: str = "alpha-member") -> str:
        return self.keystone.token(user)

    def stop(self) -> None:
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                print(f"bench: stopping failed: {exc}", file=sys.stderr)
