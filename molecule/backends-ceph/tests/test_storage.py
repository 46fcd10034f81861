"""The lab's storage host as the image service sees it: Ceph 16 under the packages' units,
healthy, an rbd pool and user that can store an image, an S3 bucket that can hold one, and all
of it back after a reboot."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid

import boto3
import pytest
import testinfra
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

HOST = os.environ["CEPH_VERIFY_HOST"]
SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
MiB = 1024 * 1024
UNITS = [
    "ceph-mon@ceph-store",
    "ceph-mgr@ceph-store",
    "ceph-osd@0",
    "ceph-radosgw@rgw.ceph-store",
]


@pytest.fixture(scope="module")
def host():
    return testinfra.get_host(
        f"ssh://root@{HOST}",
        ssh_identity_file=os.environ["CEPH_VERIFY_SSH_KEY"],
        ssh_extra_args=SSH_ARGS,
    )


@pytest.fixture(scope="module")
def s3():
    return boto3.client(
        "s3",
        endpoint_url=f"http://{HOST}:8080",
        aws_access_key_id=os.environ["CEPH_VERIFY_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["CEPH_VERIFY_S3_SECRET_KEY"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def booted(host) -> bool:
    try:
        return host.run("systemctl is-system-running").stdout.strip() in ("running", "degraded")
    except RuntimeError:  # testinfra: ssh itself failed (the host is still down)
        return False


def wait_healthy(host, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        out = host.run("ceph status -f json")
        if out.rc == 0:
            status = json.loads(out.stdout)
            pgs = status["pgmap"]
            clean = sum(s["count"] for s in pgs["pgs_by_state"] if s["state_name"] == "active+clean")
            if status["health"]["status"] == "HEALTH_OK" and clean == pgs["num_pgs"]:
                return status
        if time.monotonic() > deadline:
            raise AssertionError(f"cluster not healthy: {out.stdout} {out.stderr}")
        time.sleep(3)


@pytest.mark.parametrize("unit", UNITS)
def test_daemons_run_under_the_packages_units(host, unit):
    service = host.service(unit)
    assert service.is_enabled
    assert service.is_running


def test_cluster_is_healthy_with_one_osd(host):
    status = wait_healthy(host)
    assert status["osdmap"]["num_up_osds"] == 1


def test_glance_user_stores_an_rbd_image_in_its_pool(host):
    name = "verify-" + uuid.uuid4().hex[:8]
    # 64 MiB through the image service's own cephx user and keyring
    write = host.run(
        f"head -c {64 * MiB} /dev/urandom > /tmp/{name} && "
        f"rbd --id glance import /tmp/{name} images/{name} && sha512sum /tmp/{name}"
    )
    assert write.rc == 0, write.stderr
    try:
        assert name in json.loads(host.check_output("rbd --id glance ls --format json images"))
        back = host.check_output(f"rbd --id glance export images/{name} - | sha512sum")
        assert back.split()[0] == write.stdout.split()[0]
    finally:
        host.run(f"rbd --id glance rm images/{name}; rm -f /tmp/{name}")
    assert name not in json.loads(host.check_output("rbd --id glance ls --format json images"))


def test_glance_user_cannot_reach_other_pools(host):
    denied = host.run("rados --id glance -p .rgw.root ls")
    assert denied.rc != 0


def test_s3_bucket_holds_an_object(s3):
    key = "verify-" + uuid.uuid4().hex[:8]
    data = os.urandom(64 * MiB)
    s3.put_object(Bucket="glance", Key=key, Body=data)
    try:
        assert key in [o["Key"] for o in s3.list_objects_v2(Bucket="glance").get("Contents", [])]
        body = s3.get_object(Bucket="glance", Key=key)["Body"].read()
        assert hashlib.sha512(body).digest() == hashlib.sha512(data).digest()
    finally:
        s3.delete_object(Bucket="glance", Key=key)
    assert key not in [o["Key"] for o in s3.list_objects_v2(Bucket="glance").get("Contents", [])]


def test_cluster_comes_back_after_a_reboot(host, s3):
    host.run("systemctl reboot")
    time.sleep(5)
    deadline = time.monotonic() + 180
    while not booted(host):
        assert time.monotonic() < deadline, "the storage host did not boot again"
        time.sleep(2)
    wait_healthy(host)
    for unit in UNITS:
        assert host.service(unit).is_running
    # the gateway's unit is running before beast listens: give it time
    while True:
        try:
            buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
            break
        except EndpointConnectionError:
            assert time.monotonic() < deadline + 120, "the gateway did not come back"
            time.sleep(2)
    assert "glance" in buckets
