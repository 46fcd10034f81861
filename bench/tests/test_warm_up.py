"""The warm-up before the measurements reaches the service over many connections at once."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glancebench import measures  # noqa: E402


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    open_now = 0
    most_open = 0
    peers: list[int] = []
    tokens: set[str] = set()

    def setup(self):
        super().setup()
        with self.lock:
            type(self).open_now += 1
            type(self).most_open = max(self.most_open, self.open_now)

    def finish(self):
        super().finish()
        with self.lock:
            type(self).open_now -= 1

    def do_GET(self):  # noqa: N802
        time.sleep(0.02)  # long enough for the other connections to be open too
        with self.lock:
            self.peers.append(self.client_address[1])
            self.tokens.add(self.headers["X-Auth-Token"])
        body = json.dumps({"images": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Target:
    name = "fake"

    def __init__(self, url: str):
        self.url = url


def test_warm_up_sends_its_requests_over_many_connections_at_once():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        measures.warm_up(_Target(f"http://127.0.0.1:{server.server_port}"), "tok", connections=6, requests=3)
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Recorder.peers) == 18
    # one connection per client, each kept for its requests: 6 distinct client ports
    assert len(set(_Recorder.peers)) == 6
    assert _Recorder.most_open == 6
    assert _Recorder.tokens == {"tok"}


class _Refuser(_Recorder):
    def do_GET(self):  # noqa: N802
        body = b"503 Service Unavailable"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_failed_warm_up_requests_are_counted_not_raised():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuser)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        failed = measures.warm_up(
            _Target(f"http://127.0.0.1:{server.server_port}"), "tok", connections=3, requests=2
        )
    finally:
        server.shutdown()
        server.server_close()
    assert failed == 6
