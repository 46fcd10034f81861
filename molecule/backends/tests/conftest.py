"""Fixtures of the backends verifier: the image API as the admin sees it (a Keystone token from
openstacksdk, plain HTTP for the data so uploads and downloads can be timed), the scenario's
hosts over SSH (testinfra) and the Ceph gateway's S3 API (boto3). verify.yml passes:

BACKENDS_AUTH_URL, BACKENDS_ADMIN_PASSWORD, BACKENDS_REGION  Keystone v3 and its administrator
BACKENDS_API_URL           the image service's public endpoint
BACKENDS_SSH_KEY           root's key on the hosts
BACKENDS_CTL, BACKENDS_CEPH, BACKENDS_OBJECTS  the hosts' addresses
BACKENDS_S3_ACCESS_KEY, BACKENDS_S3_SECRET_KEY the image service's S3 keys
BACKENDS_GLANCE_PASSWORD   the glance service user's password (swift listings as that user)
BACKENDS_HTTP_URL          base URL of the http store's files (…/images/)
BACKENDS_RESULTS           where the measured throughputs are written (JSON)
"""

from __future__ import annotations

import json
import os

import boto3
import openstack
import pytest
import requests
import testinfra
from botocore.config import Config

SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
THROUGHPUT: list[dict] = []


def env(name: str) -> str:
    return os.environ[f"BACKENDS_{name}"]


def _ssh(address: str):
    return testinfra.get_host(
        f"ssh://root@{address}", ssh_identity_file=env("SSH_KEY"), ssh_extra_args=SSH_ARGS
    )


@pytest.fixture(scope="session")
def ctl():
    return _ssh(env("CTL"))


@pytest.fixture(scope="session")
def ceph():
    return _ssh(env("CEPH"))


@pytest.fixture(scope="session")
def objects():
    return _ssh(env("OBJECTS"))


@pytest.fixture(scope="session")
def cloud():
    conn = openstack.connect(
        auth_url=env("AUTH_URL"),
        username="admin",
        password=env("ADMIN_PASSWORD"),
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=env("REGION"),
        interface="public",
    )
    yield conn
    conn.close()


class ImageAPI:
    """The image API v2 over plain HTTP with the admin's token."""

    def __init__(self, base: str, token: str):
        self.base = base.rstrip("/") + "/v2"
        self.http = requests.Session()
        self.http.headers["X-Auth-Token"] = token

    def request(self, method: str, path: str, expect: int | tuple[int, ...], **kwargs) -> requests.Response:
        resp = self.http.request(method, self.base + path, timeout=600, **kwargs)
        codes = (expect,) if isinstance(expect, int) else expect
        assert resp.status_code in codes, f"{method} {path}: {resp.status_code} {resp.text[:500]}"
        return resp


@pytest.fixture(scope="session")
def api(cloud):
    return ImageAPI(env("API_URL"), cloud.auth_token)


@pytest.fixture(scope="session")
def s3():
    return boto3.client(
        "s3",
        endpoint_url=f"http://{env('CEPH')}:8080",
        aws_access_key_id=env("S3_ACCESS_KEY"),
        aws_secret_access_key=env("S3_SECRET_KEY"),
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture(scope="session")
def throughput():
    """Collects {store, attempt, direction, mib, seconds, mb_s}; written to BACKENDS_RESULTS at the end."""
    yield THROUGHPUT
    with open(env("RESULTS"), "w") as out:
        json.dump(THROUGHPUT, out, indent=1)


def pytest_terminal_summary(terminalreporter):
    for row in THROUGHPUT:
        terminalreporter.write_line(
            f"throughput {row['store']:>8} {row['direction']:>8} ({row['attempt']}): {row['mib']} MiB in "
            f"{row['seconds']:.2f} s = {row['mb_s']:.1f} MB/s"
        )
