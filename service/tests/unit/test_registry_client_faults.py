"""RegistryClient against servers that misbehave at the socket level (threads in this process):
one that never answers, one that drops a kept-alive connection as the next request arrives."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from oslo_config import cfg

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.registry import client as client_mod
from glance_service.registry.client import RegistryClient

ALICE = RequestContext(project_id="alice", roles=["member", "reader"])


def make_client(port: int, timeout: int = 1) -> RegistryClient:
    conf = cfg.ConfigOpts()
    client_mod.register_opts(conf)
    conf([], project="glance", default_config_files=[])
    conf.set_override("registry_port", port)
    conf.set_override("registry_client_timeout", timeout)
    conf.set_override("flavor", "", group="paste_deploy")  # trusted headers: no service token
    return RegistryClient(conf)


class Server:
    """Accepts on 127.0.0.1; ``handler(conn, index)`` serves each accepted connection."""

    def __init__(self, handler):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.requests: list[bytes] = []
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        index = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self.handler, args=(self, conn, index), daemon=True).start()
            index += 1

    def read_request(self, conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return None
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.requests.append(body)
        return body

    @staticmethod
    def answer(conn: socket.socket, result) -> None:
        body = json.dumps({"result": result}).encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def silent():
    """Takes the connection and the request, never answers (a hung or stopped registry)."""

    def handler(server, conn, index):
        server.read_request(conn)

    server = Server(handler)
    yield server
    server.close()


@pytest.fixture
def dropping():
    """The first connection answers one call, then reads the next request and closes without
    answering: a kept-alive connection dropped by a registry restarting as it was reused.
    Later connections answer every call."""

    def handler(server, conn, index):
        served = 0
        while True:
            body = server.read_request(conn)
            if body is None:
                return
            if index == 0 and served == 1:
                conn.close()
                return
            server.answer(conn, {"database": "ok"} if b'"ping"' in body else {"id": "x", "name": "n"})
            served += 1

    server = Server(handler)
    yield server
    server.close()


@pytest.mark.parametrize("call", ["read", "write"])
def test_no_answer_is_registry_unavailable_after_the_timeout_once(silent, call):
    client = make_client(silent.port, timeout=1)
    started = time.monotonic()
    with pytest.raises(exceptions.RegistryUnavailable) as err:
        if call == "read":
            client.image_get(ALICE, "x")
        else:
            client.image_create(ALICE, {"name": "x"})
    elapsed = time.monotonic() - started
    assert err.value.code == 503
    assert "did not answer within 1 s" in err.value.message
    assert 0.9 < elapsed < 1.6, elapsed
    assert len(silent.requests) == 1  # not sent again after the timeout


def test_a_read_on_a_dropped_keep_alive_connection_is_sent_again(dropping):
    client = make_client(dropping.port, timeout=5)
    assert client.ping(ALICE) == {"database": "ok"}
    assert client.image_get(ALICE, "x")["id"] == "x"  # dropped, then answered on a new one
    assert client._connection().connects == 2
    assert len(dropping.requests) == 3


def test_a_write_on_a_dropped_connection_is_not_sent_again(dropping):
    client = make_client(dropping.port, timeout=5)
    assert client.ping(ALICE) == {"database": "ok"}
    with pytest.raises(exceptions.RegistryUnavailable) as err:
        client.image_create(ALICE, {"name": "x"})
    assert "broke before it answered" in err.value.message
    assert [b'"image_create"' in body for body in dropping.requests] == [False, True]
    # The next call gets a fresh connection.
    assert client.image_create(ALICE, {"name": "x"})["id"] == "x"


def test_an_idle_connection_the_registry_closed_is_replaced_without_resending(dropping):
    """A connection closed while idle is noticed before the next call, even right after use:
    a write then goes out once, on a fresh connection."""
    client = make_client(dropping.port, timeout=5)
    assert client.ping(ALICE) == {"database": "ok"}
    dropping.conns[0].shutdown(socket.SHUT_RDWR)
    time.sleep(0.05)
    assert client.image_create(ALICE, {"name": "x"})["id"] == "x"
    assert client._connection().connects == 2
    assert sum(b'"image_create"' in body for body in dropping.requests) == 1
