"""What `site.yml` promises, checked on the hosts (testinfra over SSH) and from outside
(openstacksdk through the public endpoints). Shared by the default and multinode scenarios
(molecule/shared/verify.yml)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import pytest
from conftest import hosts_of, ssh_host

DATABASE = hosts_of("database")
IDENTITY = hosts_of("identity")
REGISTRY = hosts_of("glance_registry")
API = hosts_of("glance_api")
CONTROLLERS = hosts_of("glance_registry", "glance_api")


def http_get(host, url: str) -> str:
    """HTTP status of a GET made on the host itself (the lab's hosts have python3, not curl)."""
    return host.check_output(
        "python3 -c 'import sys, urllib.request as u; print(u.urlopen(sys.argv[1]).status)' %s", url
    )


@pytest.mark.parametrize("address", DATABASE)
def test_mariadb_running_and_listening(address: str) -> None:
    host = ssh_host(address)
    assert host.service("mariadb").is_enabled
    assert host.service("mariadb").is_running
    assert host.socket(f"tcp://{address}:3306").is_listening


@pytest.mark.parametrize("address", DATABASE)
def test_mariadb_secured(address: str) -> None:
    host = ssh_host(address)
    users = host.check_output("mysql -NBe \"SELECT CONCAT(User, '@', Host) FROM mysql.user\"").split()
    assert not [u for u in users if u.startswith("@")], "anonymous users left"
    assert [u for u in users if u.startswith("root@")] == ["root@localhost"]
    assert "test" not in host.check_output("mysql -NBe 'SHOW DATABASES'").split()
    charset = host.check_output(
        'mysql -NBe "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA'
        " WHERE SCHEMA_NAME='glance'\""
    )
    assert charset == "utf8mb4"


@pytest.mark.parametrize("address", DATABASE)
def test_glance_grants(address: str) -> None:
    host = ssh_host(address)
    for client in ["localhost", *json.loads(os.environ["GLANCE_VERIFY_DB_CLIENTS"])]:
        grants = host.check_output(f"mysql -NBe \"SHOW GRANTS FOR 'glance'@'{client}'\"")
        assert "GRANT ALL PRIVILEGES ON `glance`.* TO `glance`@" in grants, grants


@pytest.mark.parametrize("address", IDENTITY)
def test_keystone_and_memcached(address: str) -> None:
    host = ssh_host(address)
    for unit in ("keystone", "memcached"):
        assert host.service(unit).is_enabled
        assert host.service(unit).is_running
    assert host.socket("tcp://0.0.0.0:5000").is_listening
    keys = host.file("/etc/keystone/fernet-keys")
    assert keys.user == "keystone" and keys.mode == 0o700


@pytest.mark.parametrize("address", CONTROLLERS)
def test_glance_files(address: str) -> None:
    host = ssh_host(address)
    etc = host.file("/etc/glance")
    assert (etc.user, etc.group, etc.mode) == ("root", "glance", 0o750)
    for name, group in (("glance-registry.conf", REGISTRY), ("glance-api.conf", API)):
        conf = host.file(f"/etc/glance/{name}")
        if address in group:
            assert (conf.user, conf.group, conf.mode) == ("root", "glance", 0o640)
    if address in API:
        # The file store and the reserved staging/tasks stores (multi-store, docs/DEPLOY.md "Stores").
        for path in ("/var/lib/glance/images", "/var/lib/glance/staging", "/var/lib/glance/tasks"):
            store_dir = host.file(path)
            assert store_dir.is_directory and store_dir.user == "glance", path
    assert host.file("/var/log/glance").user == "glance"
    assert host.file("/opt/glance/bin/glance-api").is_file


# Each image service process on each of its hosts: (systemd unit, port, address).
PROCESSES = [("glance-registry", 9191, a) for a in REGISTRY] + [("glance-api", 9292, a) for a in API]


@pytest.mark.parametrize(("unit", "port", "address"), PROCESSES)
def test_service_running(unit: str, port: int, address: str) -> None:
    host = ssh_host(address)
    assert host.service(unit).is_enabled
    assert host.service(unit).is_running
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert http_get(host, f"http://127.0.0.1:{port}/healthcheck") == "200"


@pytest.mark.parametrize("address", API)
def test_api_holds_no_database_credentials(address: str) -> None:
    """Registry mode: the API reaches the database only through glance-registry."""
    conf = ssh_host(address).check_output("cat /etc/glance/glance-api.conf")
    assert "[database]" not in conf
    # Always multi-store: the file store named after its kind, plus the read-only http store.
    assert "enabled_backends = file:file, http:http" in conf
    assert "default_backend = file" in conf


@pytest.mark.parametrize("address", CONTROLLERS)
def test_units_reload_gracefully(address: str) -> None:
    host = ssh_host(address)
    for unit, group in (("glance-registry", REGISTRY), ("glance-api", API)):
        if address in group:
            props = host.check_output(f"systemctl show -p Type -p ExecReload {unit}")
            assert "Type=notify" in props
            assert "/bin/kill" in props and "-HUP" in props


def test_info_stores_lists_the_default_store(cloud) -> None:
    stores = {s.id: s for s in cloud.image.stores()}
    assert set(stores) == {"file", "http"}
    assert stores["file"].is_default


def test_catalog_has_three_image_endpoints(cloud) -> None:
    service = next(s for s in cloud.identity.services() if s.type == "image")
    assert service.name == "glance"
    endpoints = list(cloud.identity.endpoints(service_id=service.id))
    assert sorted(e.interface for e in endpoints) == ["admin", "internal", "public"]
    public = next(e for e in endpoints if e.interface == "public")
    assert public.url.rstrip("/") == os.environ["GLANCE_VERIFY_PUBLIC_URL"].rstrip("/")
    assert {e.region_id for e in endpoints} == {os.environ.get("GLANCE_VERIFY_REGION", "RegionOne")}


def test_glance_service_user(cloud) -> None:
    user = cloud.identity.find_user("glance", domain_id="default")
    project = cloud.identity.find_project("service", domain_id="default")
    assert user is not None and project is not None
    assignments = cloud.identity.role_assignments(user_id=user.id, scope_project_id=project.id)
    roles = [a.role["id"] for a in assignments]
    admin = cloud.identity.find_role("admin")
    assert admin.id in roles


def test_image_round_trip(cloud) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    image = cloud.image.create_image(
        name=f"verify-{uuid.uuid4().hex[:8]}",
        data=data,
        disk_format="raw",
        container_format="bare",
        visibility="private",
    )
    try:
        image = cloud.image.get_image(image.id)
        assert image.status == "active"
        assert image.size == len(data)
        assert image.hash_algo == "sha512"
        assert image.hash_value == hashlib.sha512(data).hexdigest()
        assert image.checksum == hashlib.md5(data).hexdigest()
        downloaded = cloud.image.download_image(image, stream=False).content
        assert hashlib.sha512(downloaded).hexdigest() == hashlib.sha512(data).hexdigest()
    finally:
        cloud.image.delete_image(image.id, ignore_missing=True)
    assert cloud.image.find_image(image.id) is None


@pytest.mark.parametrize("address", API)
def test_every_api_host_serves_the_same_images(cloud, address: str) -> None:
    """An image uploaded through the public endpoint is listed and readable through each API host."""
    data = os.urandom(64 * 1024)
    image = cloud.image.create_image(
        name=f"verify-{uuid.uuid4().hex[:8]}", data=data, disk_format="raw", container_format="bare"
    )
    try:
        host = ssh_host(address)
        token = cloud.auth_token
        digest = host.check_output(
            "python3 -c 'import hashlib, sys, urllib.request as u; "
            'r = u.urlopen(u.Request(sys.argv[1], headers={"X-Auth-Token": sys.argv[2]})); '
            "print(hashlib.sha512(r.read()).hexdigest())' %s %s",
            f"http://127.0.0.1:9292/v2/images/{image.id}/file",
            token,
        )
        assert digest == hashlib.sha512(data).hexdigest()
    finally:
        cloud.image.delete_image(image.id, ignore_missing=True)
