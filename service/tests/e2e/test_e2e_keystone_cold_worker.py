"""A Keystone worker that has just started validates a burst of tokens without refusing any.

Keystone 30 loads its policy rules inside the first request that needs them, without a lock:
a token validation checked by another thread meanwhile was refused (403), and glance-api
behind keystonemiddleware answered its client 503 "The Keystone service is temporarily
unavailable" (seen by the bench's warm-up on a freshly started service, about 1 burst in 12
here). The toolkit's Keystone and this fixture's share one gunicorn hook
(``roles/keystone/files/gunicorn_policy_hook.py``) that loads the rules before a worker
serves. Each cycle replaces the worker (SIGHUP to gunicorn's master) and sends one burst.
"""

from __future__ import annotations

import collections
import signal
import threading
import time
import urllib.error
import urllib.request

from tests.fixtures.keystone import start_keystone

CYCLES = 8
BURST = 8
HOOK_LINE = "keystone policy loaded before serving"


def _replace_worker(ks) -> None:
    """SIGHUP: gunicorn forks a new worker (a fresh Keystone import) and retires the old one."""
    log = ks.workdir / "keystone.log"
    booted = log.read_text(errors="replace").count("Booting worker")
    ks.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while log.read_text(errors="replace").count("Booting worker") == booted:
        assert time.monotonic() < deadline, "no new Keystone worker within 60 s:\n" + ks.log_tail()
        time.sleep(0.05)


def _validate_burst(url: str, service_token: str, subject_token: str) -> dict:
    """BURST validations of one token at once, as keystonemiddleware sends them."""
    statuses: collections.Counter = collections.Counter()
    start = threading.Barrier(BURST)

    def validate() -> None:
        request = urllib.request.Request(
            f"{url}/v3/auth/tokens", headers={"X-Auth-Token": service_token, "X-Subject-Token": subject_token}
        )
        start.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                statuses[response.status] += 1
        except urllib.error.HTTPError as exc:
            statuses[exc.code] += 1

    threads = [threading.Thread(target=validate) for _ in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dict(statuses)


def test_a_new_keystone_worker_validates_a_burst_of_tokens(tmp_path):
    ks = start_keystone(tmp_path / "keystone", workers=1, threads=BURST)
    try:
        service_token, subject_token = ks.token("glance"), ks.token("alpha-member")
        for cycle in range(CYCLES):
            _replace_worker(ks)
            statuses = _validate_burst(ks.url, service_token, subject_token)
            assert statuses == {200: BURST}, f"cycle {cycle}: {statuses}\n{ks.log_tail()}"
        # Every worker (the first and one per cycle) loaded the rules before serving.
        hooks = (ks.workdir / "keystone.log").read_text(errors="replace").count(HOOK_LINE)
        assert hooks == CYCLES + 1, ks.log_tail()
    finally:
        ks.stop()
