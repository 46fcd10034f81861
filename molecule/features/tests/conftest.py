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
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "files"))
from verifylib import ImageAPI, admin_cloud, ssh_host  # noqa: E402


def env(name: str) -> str:
    return os.environ[f"FEATURES_{name}"]


@pytest.fixture(scope="session")
def ctl():
    return ssh_host(env("CTL"), env("SSH_KEY"))


@pytest.fixture(scope="session")
def ceph():
    return ssh_host(env("CEPH"), env("SSH_KEY"))


@pytest.fixture(scope="session")
def cloud():
    conn = admin_cloud(env("AUTH_URL"), env("ADMIN_PASSWORD"), env("REGION"))
    yield conn
    conn.close()


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
