"""The machine's own limits, measured in the same run as the services.

Durable disk write (``dd ... conv=fdatasync``) on the disk that holds both stores, md5 and
sha512 rates from hashlib, raw ``sendfile(2)`` over loopback to one curl and to as many as
the boot storm runs: the ceilings the services' upload and download figures are compared
against. Rates are MB/s (10^6 bytes/s).

Also one figure of the machine's state, not a ceiling: the cost of a loopback round trip
between two processes (``round_trip``). Each create crosses processes about 18 times in ours
(client, API, registry, database, memcached), once per request in upstream, so the create row
moves with it; on this VM it has varied within a session.
"""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import subprocess
import threading
import time
from pathlib import Path

MB = 1_000_000


def disk_write(directory: Path, count: int) -> float:
    """``dd if=/dev/zero bs=4M count=N conv=fdatasync`` into ``directory``: MB/s."""
    target = directory / "dd-probe"
    try:
        start = time.perf_counter()
        subprocess.run(
            [
                "dd",
                "if=/dev/zero",
                f"of={target}",
                "bs=4M",
                f"count={count}",
                "conv=fdatasync",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        elapsed = time.perf_counter() - start
        return count * 4 * 1024 * 1024 / elapsed / MB
    finally:
        target.unlink(missing_ok=True)


def hash_rate(algorithm: str, total: int, block: int = 4 << 20) -> float:
    """hashlib ``algorithm`` over ``total`` bytes fed in ``block``-sized pieces: MB/s."""
    data = os.urandom(block)
    h = hashlib.new(algorithm)
    rounds = max(1, total // block)
    start = time.perf_counter()
    for _ in range(rounds):
        h.update(data)
    h.hexdigest()
    return rounds * block / (time.perf_counter() - start) / MB


def _serve_once(listener: socket.socket, path: Path) -> None:
    """Answers one GET with the whole file through ``sendfile(2)``."""
    conn, _ = listener.accept()
    with conn, open(path, "rb") as f:
        conn.settimeout(60)
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        size = os.fstat(f.fileno()).st_size
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            + f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode()
        )
        # socket.sendfile() is os.sendfile() in a loop that copes with the socket's timeout.
        conn.sendfile(f)


def sendfile_rate(path: Path) -> float:
    """A tiny sendfile server on loopback and ``curl -o /dev/null``: MB/s as curl measured it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(60)
        port = listener.getsockname()[1]
        server = threading.Thread(target=_serve_once, args=(listener, path), daemon=True)
        server.start()
        out = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
             f"http://127.0.0.1:{port}/file"],
            check=True, capture_output=True, text=True, timeout=600,
        ).stdout.split()  # fmt: skip
        server.join(60)
    code, size, seconds = int(out[0]), int(out[1]), float(out[2])
    if code != 200 or size != path.stat().st_size:
        raise RuntimeError(f"sendfile probe: HTTP {code}, {size} bytes")
    return size / seconds / MB


def sendfile_storm_rate(path: Path, clients: int) -> float:
    """The boot storm's ceiling: ``clients`` simultaneous ``curl -o /dev/null`` of the file from
    a raw sendfile server (a thread per connection, nothing else done per byte); aggregate MB/s
    over the wall time, as ``measures.boot_storm`` counts the services'. What the clients and
    loopback on this machine can receive, whatever the server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(clients)
        listener.settimeout(60)
        port = listener.getsockname()[1]
        servers = [
            threading.Thread(target=_serve_once, args=(listener, path), daemon=True) for _ in range(clients)
        ]
        for server in servers:
            server.start()
        argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                f"http://127.0.0.1:{port}/file"]  # fmt: skip
        start = time.perf_counter()
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(clients)]
        answers = [p.communicate(timeout=3600)[0].split() for p in procs]
        wall = time.perf_counter() - start
        for server in servers:
            server.join(60)
    size = path.stat().st_size
    if any(a != ["200", str(size)] for a in answers):
        raise RuntimeError(f"sendfile storm probe: {answers}")
    return clients * size / wall / MB


def round_trip(count: int = 20000) -> dict[str, float]:
    """A 32-byte TCP ping-pong over loopback with a forked echo process, ``count`` times: wall
    and CPU (both processes, user + system) microseconds per round trip, and the system share
    of that CPU. Every reply is checked: a short or wrong echo raises."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        pid = os.fork()
        if pid == 0:  # the echo process: exits when the client closes
            try:
                conn, _ = listener.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while data := conn.recv(64):
                    conn.sendall(data)
            finally:
                os._exit(0)
    message = b"p" * 32
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            for _ in range(count):
                client.sendall(message)
                if client.recv(64) != message:
                    raise RuntimeError("round-trip probe: a wrong echo")
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        child = os.wait4(pid, 0)[2]
    user = after.ru_utime - before.ru_utime + child.ru_utime
    system = after.ru_stime - before.ru_stime + child.ru_stime
    return {
        "wall_us": wall / count * 1e6,
        "cpu_us": (user + system) / count * 1e6,
        "system_share": system / (user + system) if user + system else 0.0,
    }


def measure(
    workdir: Path, data_file: Path, disk_count: int, hash_bytes: int, storm_clients: int
) -> dict[str, float]:
    return {
        "disk_write_MBps": disk_write(workdir, disk_count),
        "md5_MBps": hash_rate("md5", hash_bytes),
        "sha512_MBps": hash_rate("sha512", hash_bytes),
        "sendfile_MBps": sendfile_rate(data_file),
        "sendfile_storm_MBps": sendfile_storm_rate(data_file, storm_clients),
    }
