"""How a download's body is sent: ``sendfile`` to clients on other hosts, 1 MiB reads and
writes to clients on this host (``image_data._body``), with real files and sockets."""

from __future__ import annotations

import os
import socket

import pytest
from gunicorn.http.wsgi import FileWrapper

from glance_service.api import image_data
from glance_service.store import filesystem

DATA = os.urandom(3 * 1024 * 1024 + 5)


class PeerSocket:
    """Only the addresses of a connection (a remote peer cannot be made on this machine)."""

    def __init__(self, peer, local):
        self._peer, self._local = peer, local

    def getpeername(self):
        if isinstance(self._peer, Exception):
            raise self._peer
        return self._peer

    def getsockname(self):
        return self._local


@pytest.fixture
def image_url(tmp_path):
    path = tmp_path / "image"
    path.write_bytes(DATA)
    return f"file://{path}"


@pytest.fixture
def loopback_conn():
    """The server side of a real TCP connection over loopback."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    yield server
    server.close()
    client.close()


def environ(sock) -> dict:
    return {"wsgi.file_wrapper": FileWrapper, "gunicorn.socket": sock}


@pytest.mark.parametrize("offset,length", [(0, None), (1000, 2 * 1024 * 1024 + 1)])
def test_download_to_a_client_on_this_host_is_read_and_written(image_url, loopback_conn, offset, length):
    source = filesystem.open_url(image_url, offset, length)
    body = image_data._body(source, environ(loopback_conn))
    assert not isinstance(body, FileWrapper)
    pieces = list(body)
    end = len(DATA) if length is None else offset + length
    assert b"".join(pieces) == DATA[offset:end]
    assert max(map(len, pieces)) <= 1024 * 1024
    assert source.fileobj.closed


def test_download_to_a_remote_client_is_sendfile_of_exactly_the_range(image_url):
    offset, length = 4097, 1024 * 1024 + 3
    source = filesystem.open_url(image_url, offset, length)
    body = image_data._body(source, environ(PeerSocket(("198.51.100.7", 40000), ("198.51.100.1", 9292))))
    assert isinstance(body, FileWrapper)
    # What gunicorn does with it: sendfile from the descriptor's current position, for
    # Content-Length (the source's size) bytes, over a real socket.
    fd = body.filelike.fileno()
    start = os.lseek(fd, 0, os.SEEK_CUR)
    sender, receiver = socket.socketpair()
    with sender, receiver:
        receiver.settimeout(10)
        sent = 0
        got = bytearray()
        while sent < source.size:
            sent += os.sendfile(sender.fileno(), fd, start + sent, min(65536, source.size - sent))
            got += receiver.recv(1 << 20)
        sender.shutdown(socket.SHUT_WR)
        while chunk := receiver.recv(1 << 20):
            got += chunk
    body.close()
    assert bytes(got) == DATA[offset : offset + length]
    assert source.fileobj.closed


def test_download_without_a_file_wrapper_is_read_and_written(image_url):
    source = filesystem.open_url(image_url)
    body = image_data._body(source, {"gunicorn.socket": PeerSocket(("198.51.100.7", 1), ("198.51.100.1", 2))})
    assert b"".join(body) == DATA


@pytest.mark.parametrize(
    "peer,local,expected",
    [
        (("127.0.0.1", 5), ("127.0.0.1", 9292), True),
        (("127.0.0.2", 5), ("127.0.0.1", 9292), True),
        (("::1", 5, 0, 0), ("::1", 9292, 0, 0), True),
        (("::ffff:127.0.0.1", 5, 0, 0), ("::ffff:127.0.0.1", 9292, 0, 0), True),
        (("198.51.100.1", 5), ("198.51.100.1", 9292), True),  # this host's own address
        (("198.51.100.7", 5), ("198.51.100.1", 9292), False),
        (("2001:db8::7", 5, 0, 0), ("2001:db8::1", 9292, 0, 0), False),
        ("", "/run/glance/api.sock", True),  # a Unix socket
        (OSError(107, "Transport endpoint is not connected"), ("127.0.0.1", 9292), False),
    ],
)
def test_download_client_on_this_host(peer, local, expected):
    assert image_data._client_on_this_host({"gunicorn.socket": PeerSocket(peer, local)}) is expected


def test_download_client_unknown_without_the_servers_socket():
    # REMOTE_ADDR alone is not trusted: proxy middleware rewrites it from request headers.
    assert image_data._client_on_this_host({"REMOTE_ADDR": "127.0.0.1"}) is False
