"""glance-api spreads kept-alive connections evenly over its workers (common/accept_balance.py).

Real registry + API (two workers). Without the spread, the kernel's accept race put 16
connections opened one after another 3/13 to 6/10 on two idle workers, and 16 opened at once
sometimes all on one, which halves what the service serves (one worker is one core).
"""

from __future__ import annotations

import http.client
import threading
import time

import psutil
import pytest

from glance_service.common.after_worker_exit import CHILD_NAME
from tests.fixtures.glance_procs import start_glance


@pytest.fixture(scope="module")
def procs(tmp_path_factory):
    glance = start_glance(tmp_path_factory.mktemp("balance"), workers=2)
    both_workers_serve(glance)
    yield glance
    glance.stop()


def both_workers_serve(procs) -> None:
    """The service answers as soon as one worker does; the other may still be loading the
    application, and a worker that does not accept yet is left nothing. Two connections at a
    time until each worker holds one (60 s at most)."""
    deadline = time.monotonic() + 60
    while True:
        conns = [open_kept_alive(procs), open_kept_alive(procs)]
        counts = settled(procs, 2)
        for conn in conns:
            conn.close()
        settled(procs, 0)
        if counts == [1, 1]:
            return
        assert time.monotonic() < deadline, f"the second API worker never took a connection: {counts}"
        time.sleep(0.2)


def held_by_worker(procs) -> list[int]:
    """Established connections on the API's port, per worker, fewest first."""
    counts = []
    for child in psutil.Process(procs.api.pid).children():
        if child.name() == CHILD_NAME:
            continue
        conns = child.net_connections(kind="tcp")
        counts.append(
            sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == procs.api_port)
        )
    return sorted(counts)


def open_kept_alive(procs) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", procs.api_port, timeout=30)
    conn.request("GET", "/versions")
    resp = conn.getresponse()
    resp.read()
    assert resp.status in (200, 300), resp.status
    return conn


def settled(procs, total: int) -> list[int]:
    deadline = time.monotonic() + 10
    while True:
        counts = held_by_worker(procs)
        if sum(counts) == total or time.monotonic() > deadline:
            return counts
        time.sleep(0.05)


@pytest.mark.parametrize("trial", range(3))
def test_connections_opened_one_after_another_are_spread(procs, trial):
    conns = [open_kept_alive(procs) for _ in range(16)]
    try:
        counts = settled(procs, 16)
        assert len(counts) == 2 and sum(counts) == 16, counts
        assert counts[1] - counts[0] <= 2, counts
    finally:
        for conn in conns:
            conn.close()
    # Closed on both sides before the next trial counts.
    assert settled(procs, 0) == [0, 0]


def test_connections_opened_at_once_are_spread(procs):
    conns: list[http.client.HTTPConnection] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def client() -> None:
        start.wait()
        conn = open_kept_alive(procs)
        with lock:
            conns.append(conn)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert len(conns) == 16
        counts = settled(procs, 16)
        assert sum(counts) == 16 and counts[0] >= 5, counts
    finally:
        for conn in conns:
            conn.close()
