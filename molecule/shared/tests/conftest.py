"""Fixtures of the deployment verifier: the deployed hosts over SSH (testinfra) and the cloud
seen from the deploy host (openstacksdk). verify.yml passes the topology in the environment:

GLANCE_VERIFY_TOPOLOGY  JSON {group: [address, ...]} for database, identity, glance_registry, glance_api
GLANCE_VERIFY_SSH_KEY   private key for root on the hosts
GLANCE_VERIFY_AUTH_URL  Keystone's public URL with /v3; GLANCE_VERIFY_ADMIN_PASSWORD the admin's password
GLANCE_VERIFY_PUBLIC_URL  the image service's public endpoint; GLANCE_VERIFY_REGION the region
GLANCE_VERIFY_DB_CLIENTS  JSON list of hosts the glance database user must be granted from
"""

from __future__ import annotations

import json
import os

import openstack
import pytest
import testinfra

SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


def topology() -> dict[str, list[str]]:
    return json.loads(os.environ["GLANCE_VERIFY_TOPOLOGY"])


def hosts_of(*groups: str) -> list[str]:
    found: list[str] = []
    for group in groups:
        for address in topology().get(group, []):
            if address not in found:
                found.append(address)
    return found


_hosts: dict[str, testinfra.host.Host] = {}


def ssh_host(address: str):
    if address not in _hosts:
        _hosts[address] = testinfra.get_host(
            f"ssh://root@{address}",
            ssh_identity_file=os.environ["GLANCE_VERIFY_SSH_KEY"],
            ssh_extra_args=SSH_ARGS,
        )
    return _hosts[address]


@pytest.fixture(scope="session")
def cloud():
    conn = openstack.connect(
        auth_url=os.environ["GLANCE_VERIFY_AUTH_URL"],
        username="admin",
        password=os.environ["GLANCE_VERIFY_ADMIN_PASSWORD"],
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=os.environ.get("GLANCE_VERIFY_REGION", "RegionOne"),
        interface="public",
    )
    yield conn
    conn.close()
