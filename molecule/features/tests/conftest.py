"""Fixtures of the features verifier: the image API as the admin sees it (a Keystone token from
openstacksdk, plain HTTP), the hosts over SSH (testinfra), and an oslo.messaging notification
listener on the deployed RabbitMQ. verify.yml passes:

FEATURES_AUTH_URL, FEATURES_ADMIN_PASSWORD, FEATURES_REGION  Keystone v3 and its administrator
FEATURES_API_URL         the image service's public endpoint
FEATURES_SSH_KEY         root's key on the hosts
FEATURES_CTL, FEATURES_CEPH  the hosts' addresses
FEATURES_TRANSPORT_URL   the broker as glance-api's transport_url names it
FEATURES_PUBLISHER       the publisher_id glance-api sends with (image.<inventory name>)
"""

from __future__ import annotations

import os
import threading
import time

import openstack
import pytest
import requests
import testinfra

SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


def env(name: str) -> str:
    return os.environ[f"FEATURES_{name}"]


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

    def wait_status(self, image_id: str, status: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            image = self.request("GET", f"/images/{image_id}", 200).json()
            if image["status"] == status:
                return image
            assert time.monotonic() < deadline, f"image {image_id} is {image['status']}, not {status}"
            time.sleep(1)


@pytest.fixture(scope="session")
def api(cloud):
    return ImageAPI(env("API_URL"), cloud.auth_token)


class Notifications:
    """What the listener received: ``(priority, publisher_id, event_type, payload)``."""

    def __init__(self):
        self.events: list[tuple] = []
        self.cond = threading.Condition()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._add("info", publisher_id, event_type, payload)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._add("error", publisher_id, event_type, payload)

    def _add(self, *event) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_for(self, event_type: str, match, timeout: float = 60):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for priority, publisher, etype, payload in self.events:
                    if etype == event_type and match(payload):
                        return priority, publisher, payload
                left = deadline - time.monotonic()
                assert left > 0, f"no {event_type} in {timeout}s: {[e[2] for e in self.events]}"
                self.cond.wait(left)


@pytest.fixture(scope="session")
def notifications():
    import oslo_messaging
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    conf([], project="features-verify")
    transport = oslo_messaging.get_notification_transport(conf, url=env("TRANSPORT_URL"))
    found = Notifications()
    listener = oslo_messaging.get_notification_listener(
        transport,
        [oslo_messaging.Target(topic="notifications", exchange="glance")],
        [found],
        executor="threading",
    )
    listener.start()
    try:
        yield found
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()
