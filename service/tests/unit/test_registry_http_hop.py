"""registry/http_hop.py: the registry client's HTTP/1.1 connection. What it sends is what
http.client sent; what it reads is the status, the body and whether the server closes, and its
failures are http.client's classes (the client's resend rules depend on them)."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from glance_service.registry import http_hop


class CannedServer:
    """Accepts one connection; for each request read, sends the next canned answer (bytes),
    then closes after the last one."""

    def __init__(self, *answers: bytes):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answers = list(answers)
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            for answer in self.answers:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += conn.recv(65536)
                self.received.append(head + b"\r\n\r\n" + body)
                conn.sendall(answer)

    def close(self) -> None:
        self.sock.close()


def _post(server: CannedServer, headers: dict | None = None, body: bytes = b'{"command": "ping"}'):
    conn = http_hop.Connection("127.0.0.1", server.port, 5)
    conn.request("POST", "/rpc", body=body, headers=headers or {"Content-Type": "application/json"})
    return conn, conn.getresponse()


def test_the_request_is_what_http_client_sent():
    server = CannedServer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    _post(server, {"Content-Type": "application/json", "X-Auth-Token": "tok"})
    server.thread.join(5)
    assert server.received == [
        b"POST /rpc HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{server.port}\r\n".encode()
        + b"Accept-Encoding: identity\r\n"
        b"Content-Type: application/json\r\nX-Auth-Token: tok\r\n"
        b'Content-Length: 19\r\n\r\n{"command": "ping"}'
    ]
    server.close()


def test_a_kept_alive_connection_carries_several_calls():
    answers = [
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"result": 1}'
    ] * 3
    server = CannedServer(*answers)
    conn = http_hop.Connection("127.0.0.1", server.port, 5)
    for _ in range(3):
        conn.request("POST", "/rpc", body=b"{}", headers={})
        resp = conn.getresponse()
        assert (resp.status, resp.read(), resp.will_close) == (200, b'{"result": 1}', False)
    conn.close()
    assert conn.sock is None
    server.close()


@pytest.mark.parametrize(
    ("answer", "status", "body", "will_close"),
    [
        (b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 3\r\n\r\nno!",
         401, b"no!", True),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, b"ok", True),
        (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", 200, b"ok", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
         200, b"abcde", False),
        (b"HTTP/1.1 500 Internal Server Error\r\n\r\nno framing", 500, b"no framing", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b"", False),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, b"ok", False),
    ],
)  # fmt: skip
def test_answers_are_read_as_http_client_reads_them(answer, status, body, will_close):
    server = CannedServer(answer)
    _, resp = _post(server)
    assert (resp.status, resp.read(), resp.will_close) == (status, body, will_close)
    server.close()


def test_a_connection_closed_without_an_answer_is_remote_disconnected():
    server = CannedServer(b"")
    with pytest.raises(http.client.RemoteDisconnected):
        _post(server)
    server.close()


def test_a_truncated_body_is_an_incomplete_read():
    server = CannedServer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    with pytest.raises(http.client.IncompleteRead):
        _post(server)
    server.close()


def test_a_garbled_status_line_is_bad_status_line():
    server = CannedServer(b"SMTP ready\r\n\r\n")
    with pytest.raises(http.client.BadStatusLine):
        _post(server)
    server.close()


@pytest.mark.parametrize("headers", [{"X-Roles": "member\r\nX-Roles: admin"}, {"X-A\nB": "v"}, {"X": "a\rb"}])
def test_a_line_break_inside_a_header_is_refused_before_sending(headers):
    conn = http_hop.Connection("127.0.0.1", 9, 5)
    with pytest.raises(ValueError):
        conn.request("POST", "/rpc", body=b"{}", headers=headers)
    assert conn.sock is None  # nothing was sent: not even connected


def test_a_read_timeout_is_timeout_error():
    server = socket.create_server(("127.0.0.1", 0))
    conn = http_hop.Connection("127.0.0.1", server.getsockname()[1], 0.2)
    conn.request("POST", "/rpc", body=b"{}", headers={})
    with pytest.raises(TimeoutError):
        conn.getresponse()
    conn.close()
    server.close()
