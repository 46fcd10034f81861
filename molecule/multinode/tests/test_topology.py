"""What the multi-node layout adds to the default verifier: each process runs on its own host
only, and the tiers reach each other over the lab network (API -> registry -> MariaDB), with
the catalog pointing every image endpoint at the one API host."""

from __future__ import annotations

import os
import re

import pytest
from conftest import hosts_of, ssh_host

DATABASE = hosts_of("database")
IDENTITY = hosts_of("identity")
REGISTRY = hosts_of("glance_registry")
API = hosts_of("glance_api")
EVERY_HOST = hosts_of("database", "identity", "glance_registry", "glance_api")


def test_layout() -> None:
    """The scenario this file is written for: one database+identity host, one registry, one API."""
    assert len(DATABASE) == 1 and IDENTITY == DATABASE
    assert len(REGISTRY) == 1 and len(API) == 1
    assert len({DATABASE[0], REGISTRY[0], API[0]}) == 3


def tcp_connects(host, address: str, port: int) -> bool:
    """Whether `host` opens a TCP connection to address:port (python3 is on the lab's hosts)."""
    code = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()"
    return host.run(f"python3 -c '{code}' %s %s", address, str(port)).rc == 0


@pytest.mark.parametrize("address", EVERY_HOST)
def test_processes_only_where_they_belong(address: str) -> None:
    host = ssh_host(address)
    expected = {
        ("mariadb", 3306): address in DATABASE,
        ("keystone", 5000): address in IDENTITY,
        ("glance-registry", 9191): address in REGISTRY,
        ("glance-api", 9292): address in API,
    }
    for (unit, port), wanted in expected.items():
        assert host.service(unit).is_running == wanted, f"{unit} on {address}"
        listening = (
            host.socket(f"tcp://0.0.0.0:{port}").is_listening
            or host.socket(f"tcp://{address}:{port}").is_listening
        )
        assert listening == wanted, f"port {port} on {address}"


def test_api_reaches_the_registry_over_the_network() -> None:
    api = ssh_host(API[0])
    conf = api.file("/etc/glance/glance-api.conf").content_string
    assert re.search(rf"^registry_host = {re.escape(REGISTRY[0])}$", conf, re.M), conf
    assert re.search(r"^registry_port = 9191$", conf, re.M)
    assert tcp_connects(api, REGISTRY[0], 9191)


def test_registry_reaches_mariadb_over_the_network() -> None:
    registry = ssh_host(REGISTRY[0])
    conf = registry.check_output("cat /etc/glance/glance-registry.conf")
    assert f"@{DATABASE[0]}:3306/glance" in conf
    assert tcp_connects(registry, DATABASE[0], 3306)


def test_api_reaches_keystone_over_the_network() -> None:
    assert tcp_connects(ssh_host(API[0]), IDENTITY[0], 5000)


def test_glance_grants_exactly_the_controllers() -> None:
    db = ssh_host(DATABASE[0])
    hosts = db.check_output("mysql -NBe \"SELECT Host FROM mysql.user WHERE User='glance'\"").split()
    assert sorted(hosts) == sorted(["localhost", REGISTRY[0], API[0]])


def test_every_image_endpoint_points_at_the_api_host(cloud) -> None:
    service = next(s for s in cloud.identity.services() if s.type == "image")
    urls = {e.interface: e.url.rstrip("/") for e in cloud.identity.endpoints(service_id=service.id)}
    assert urls == {interface: f"http://{API[0]}:9292" for interface in ("public", "internal", "admin")}
    assert os.environ["GLANCE_VERIFY_PUBLIC_URL"].rstrip("/") == f"http://{API[0]}:9292"
