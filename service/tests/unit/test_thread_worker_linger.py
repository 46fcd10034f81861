"""The keep-alive linger of the gthread worker (common/thread_worker.py): after a request on a
kept-alive connection the pool thread serves the connection's next request itself when it
arrives within ``keepalive_linger``, and hands the connection back to gunicorn's main thread
otherwise, when the worker stops, or when another connection waits for a thread."""

from __future__ import annotations

import io
import queue
import socket
import threading
import time

import pytest
from gunicorn.workers import gthread

from glance_service.common import thread_worker


class Pool:
    def __init__(self):
        self._work_queue = queue.SimpleQueue()


class Conn:
    def __init__(self, sock: socket.socket):
        self.sock = sock

        class Unreader:
            buf = io.BytesIO()

        class Parser:
            unreader = Unreader()

        self.parser = Parser()


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def _worker(linger: float = 0.2) -> thread_worker.ThreadWorker:
    worker = thread_worker.ThreadWorker.__new__(thread_worker.ThreadWorker)
    worker.alive = True
    worker.tpool = Pool()
    worker.keepalive_linger = linger
    worker.linger_slice = 0.01
    return worker


def test_a_request_arriving_within_the_linger_is_served_by_the_same_thread(pair):
    server, client = pair
    worker = _worker()
    threading.Timer(0.03, client.sendall, [b"GET / HTTP/1.1\r\n\r\n"]).start()
    started = time.monotonic()
    assert worker._next_request_arrived(Conn(server)) is True
    assert time.monotonic() - started < 0.2


def test_no_request_within_the_linger_hands_the_connection_back(pair):
    server, _ = pair
    worker = _worker(linger=0.05)
    started = time.monotonic()
    assert worker._next_request_arrived(Conn(server)) is False
    assert 0.045 <= time.monotonic() - started < 0.5


def test_a_request_read_ahead_needs_no_wait(pair):
    server, _ = pair
    conn = Conn(server)
    conn.parser.unreader.buf = io.BytesIO(b"GET / HTTP/1.1\r\n")
    started = time.monotonic()
    assert _worker(linger=5)._next_request_arrived(conn) is True
    assert time.monotonic() - started < 0.5


def test_a_peer_that_closes_ends_the_wait_at_once(pair):
    server, client = pair
    client.close()
    started = time.monotonic()
    # Readable: the next handle() reads the end of the connection and closes it.
    assert _worker(linger=5)._next_request_arrived(Conn(server)) is True
    assert time.monotonic() - started < 0.5


def test_no_linger_while_another_connection_waits_for_a_thread(pair):
    server, _ = pair
    worker = _worker(linger=5)
    worker.tpool._work_queue.put("queued")
    started = time.monotonic()
    assert worker._next_request_arrived(Conn(server)) is False
    assert time.monotonic() - started < 0.5


def test_the_linger_ends_when_a_connection_starts_waiting(pair):
    server, _ = pair
    worker = _worker(linger=5)
    threading.Timer(0.05, worker.tpool._work_queue.put, ["queued"]).start()
    started = time.monotonic()
    assert worker._next_request_arrived(Conn(server)) is False
    assert time.monotonic() - started < 1


def test_the_linger_ends_when_the_worker_stops(pair):
    server, _ = pair
    worker = _worker(linger=5)
    threading.Timer(0.05, setattr, [worker, "alive", False]).start()
    started = time.monotonic()
    assert worker._next_request_arrived(Conn(server)) is False
    assert time.monotonic() - started < 1


def test_a_stopping_worker_does_not_linger(pair):
    server, client = pair
    client.sendall(b"GET / HTTP/1.1\r\n\r\n")
    worker = _worker()
    worker.alive = False
    assert worker._next_request_arrived(Conn(server)) is False


def test_handle_serves_requests_until_the_connection_is_handed_back(monkeypatch, pair):
    server, _ = pair
    results = [True, True, False]
    served = []

    def handle(self, conn):
        served.append(conn)
        return results[len(served) - 1]

    monkeypatch.setattr(gthread.ThreadWorker, "handle", handle)
    worker = _worker()
    monkeypatch.setattr(worker, "_next_request_arrived", lambda conn: True)
    conn = Conn(server)
    assert worker.handle(conn) is False
    assert served == [conn, conn, conn]


def test_handle_returns_what_gunicorn_returns_after_the_last_request(monkeypatch, pair):
    server, _ = pair
    deferred = object()
    for first, calls in ((True, 1), (False, 1), (deferred, 1)):
        served = []

        def handle(self, conn, first=first, served=served):
            served.append(conn)
            return first

        monkeypatch.setattr(gthread.ThreadWorker, "handle", handle)
        worker = _worker()
        monkeypatch.setattr(worker, "_next_request_arrived", lambda conn: False)
        assert worker.handle(Conn(server)) is first
        assert len(served) == calls
