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
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

THROUGHPUT: list[dict] = []


sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "files"))
from verifylib import ImageAPI, admin_cloud, ssh_host  # noqa: E402


def env(name: str) -> str:
    return os.environ[f"BACKENDS_{name}"]


@pytest.fixture(scope="session")
def ctl():
    return ssh_host(env("CTL"), env("SSH_KEY"))


@pytest.fixture(scope="session")
def ceph():
    return ssh_host(env("CEPH"), env("SSH_KEY"))


@pytest.fixture(scope="session")
def objects():
    return ssh_host(env("OBJECTS"), env("SSH_KEY"))


@pytest.fixture(scope="session")
def cloud():
    conn = admin_cloud(env("AUTH_URL"), env("ADMIN_PASSWORD"), env("REGION"))
    yield conn
    conn.close()


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
