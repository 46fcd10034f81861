"""Helpers for the data-path tests: streamed bodies, raw-socket uploads, datadir checks."""

from __future__ import annotations

import hashlib
import os
import socket
import time
import urllib.parse

OCTET = {"Content-Type": "application/octet-stream"}


def chunks(size: int, block: int = 1024 * 1024, seed: bytes | None = None):
    """``size`` pseudo-random bytes in blocks, generated on the fly (never held whole)."""
    base = seed or os.urandom(block)
    sent, n = 0, 0
    while sent < size:
        piece = (n.to_bytes(8, "big") + base[8:])[: min(block, size - sent)]
        sent += len(piece)
        n += 1
        yield piece


class StreamBody:
    """A file-like body of known length, so that ``requests`` sends Content-Length (not
    chunked) while the data is still generated as it goes. Hashes what it hands out."""

    def __init__(self, size: int):
        self.len = size
        self._gen = chunks(size)
        self._rest = b""
        self.sha512 = hashlib.sha512()

    def read(self, n: int = -1) -> bytes:
        while len(self._rest) < n or n < 0:
            more = next(self._gen, b"")
            if not more:
                break
            self._rest += more
        out, self._rest = (self._rest, b"") if n < 0 else (self._rest[:n], self._rest[n:])
        self.sha512.update(out)
        return out


class HashingGen:
    """A generator body (``requests`` sends it chunked) that hashes what it yields."""

    def __init__(self, size: int):
        self.size = size
        self.sha512 = hashlib.sha512()

    def __iter__(self):
        for piece in chunks(self.size):
            self.sha512.update(piece)
            yield piece


def image_files(datadir, image_id: str) -> list[str]:
    """Every file in the store's datadir that belongs to ``image_id`` (data or partial)."""
    return sorted(name for name in os.listdir(datadir) if image_id in name)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class RawUpload:
    """An upload over a raw socket, to send part of a body and then vanish or stall."""

    def __init__(
        self, base_url: str, image_id: str, headers: dict, *, length: int | None, chunked: bool = False
    ):
        url = urllib.parse.urlsplit(base_url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=30)
        self.chunked = chunked
        lines = [f"PUT /v2/images/{image_id}/file HTTP/1.1", f"Host: {url.netloc}"]
        lines += [f"{k}: {v}" for k, v in {**headers, **OCTET}.items()]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        else:
            lines.append(f"Content-Length: {length}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send(self, data: bytes) -> None:
        if self.chunked:
            self.sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            self.sock.sendall(data)

    def finish(self) -> None:
        if self.chunked:
            self.sock.sendall(b"0\r\n\r\n")

    def response_status(self) -> int:
        data = b""
        while b"\r\n" not in data:
            more = self.sock.recv(4096)
            if not more:
                break
            data += more
        return int(data.split(b" ", 2)[1])

    def close(self) -> None:
        self.sock.close()
