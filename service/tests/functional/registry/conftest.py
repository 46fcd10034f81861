"""A real glance-registry process (console script from this virtualenv) on SQLite, trusted headers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from oslo_config import cfg

from glance_service.context import RequestContext
from glance_service.db import migrate
from glance_service.registry import client as client_mod
from glance_service.registry.client import RegistryClient

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, workdir: Path, flavor: str = "", sync: bool = True, extra: str = ""):
        self.workdir = workdir
        self.port = free_port()
        self.db_url = f"sqlite:///{workdir / 'glance.sqlite'}"
        self.conf = workdir / "glance-registry.conf"
        self.conf.write_text(
            "[DEFAULT]\n"
            "bind_host = 127.0.0.1\n"
            f"bind_port = {self.port}\n"
            "workers = 2\n"
            "threads_per_worker = 4\n"
            f"log_file = {workdir / 'glance-registry.log'}\n"
            f"{extra}"
            "[database]\n"
            f"connection = {self.db_url}\n"
            "[paste_deploy]\n"
            f"flavor = {flavor}\n"
            "[keystone_authtoken]\n"
            "www_authenticate_uri = http://127.0.0.1:1/identity\n"
            "auth_url = http://127.0.0.1:1/identity\n"
        )
        if sync:
            migrate.sync(self.db_url)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> subprocess.Popen:
        out = open(self.workdir / "glance-registry.out", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [str(BIN / "glance-registry"), "--config-file", str(self.conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            out.close()
        if wait:
            self.wait_healthy()
        return self.proc

    def output(self) -> str:
        parts = []
        for name in ("glance-registry.out", "glance-registry.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"glance-registry exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/healthcheck", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"glance-registry not healthy after {timeout}s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # The registry runs in its own session: signal its group (master and workers), by PID.
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def client_conf(self, **defaults) -> cfg.ConfigOpts:
        conf = cfg.ConfigOpts()
        client_mod.register_opts(conf)
        conf([], default_config_files=[])
        conf.set_override("registry_host", "127.0.0.1")
        conf.set_override("registry_port", self.port)
        conf.set_override("flavor", defaults.get("flavor", ""), group="paste_deploy")
        return conf


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry"))
    reg.start()
    yield reg
    reg.stop()


@pytest.fixture
def make_registry(tmp_path) -> Iterator:
    """Registries of the test's own (``make_registry(flavor=..., sync=...)``), stopped at the end."""
    made: list[Registry] = []

    def make(**kwargs) -> Registry:
        workdir = tmp_path / f"registry{len(made)}"
        workdir.mkdir()
        made.append(Registry(workdir, **kwargs))
        return made[-1]

    yield make
    for reg in made:
        reg.stop()


@pytest.fixture
def client(registry) -> Iterator[RegistryClient]:
    c = RegistryClient(registry.client_conf())
    yield c
    c.close()


@pytest.fixture
def admin() -> RequestContext:
    return RequestContext.admin()


@pytest.fixture
def alice() -> RequestContext:
    return RequestContext(
        user_id="u-alice", project_id="alpha-" + os.urandom(4).hex(), roles=["member", "reader"]
    )


@pytest.fixture
def bob() -> RequestContext:
    return RequestContext(
        user_id="u-bob", project_id="beta-" + os.urandom(4).hex(), roles=["member", "reader"]
    )
