#!/usr/bin/python3
"""A stand-in for a controller's services (molecule/loadbalancer): answers on ADDRESS:PORT...

GET /healthcheck      200 OK (503 while /run/dummy-backend/down exists)
GET /slow?seconds=N   200, one line per second for N seconds (an in-flight transfer)
GET /headers          200, the request's headers as JSON (X-Forwarded-*)
"""

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body, chunks=None):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body) * (chunks or 1)))
        self.end_headers()
        for _ in range(chunks or 1):
            self.wfile.write(body)
            self.wfile.flush()
            if chunks:
                time.sleep(1)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthcheck":
            if os.path.exists("/run/dummy-backend/down"):
                self.reply(503, b"DOWN\n")
            else:
                self.reply(200, b"OK\n")
        elif url.path == "/slow":
            seconds = int(parse_qs(url.query).get("seconds", ["10"])[0])
            self.reply(200, b"x\n", chunks=seconds)
        elif url.path == "/headers":
            self.reply(200, json.dumps(dict(self.headers)).encode() + b"\n")
        else:
            self.reply(200, f"{os.uname().nodename} {self.server.server_port}\n".encode())

    def log_message(self, *args):
        pass


def main():
    address = sys.argv[1]
    servers = [ThreadingHTTPServer((address, int(port)), Handler) for port in sys.argv[2:]]
    threads = [Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
