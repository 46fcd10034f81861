"""Helpers shared by the import, multi-store and tasks tests: a loopback HTTP server for
web-download, and waiting for an image or task to settle."""

from __future__ import annotations

import http.server
import threading
import time

OCTET = {"Content-Type": "application/octet-stream"}


class DataServer:
    """An HTTP server on 127.0.0.1 (free port) serving ``files`` at ``/<name>``, redirects at
    ``/redirect?to=<url>``, and ``/slow/<name>``, which sends half of the file, stalls until
    ``release()`` and then sends the rest (to catch an import in the middle)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self._release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path, _, query = self.path.partition("?")
                if path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", query.removeprefix("to="))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                slow = path.startswith("/slow/")
                data = server.files.get(path.removeprefix("/slow").lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not slow:
                    self.wfile.write(data)
                    return
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                server._release.wait(60)
                try:
                    self.wfile.write(data[len(data) // 2 :])
                except OSError:
                    pass  # the importer is gone (a killed API)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def release(self) -> None:
        self._release.set()

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_image(http, image_id: str, until=("active", "queued"), timeout: float = 30.0, prop=None) -> dict:
    """Poll until the image's status is in ``until`` and no import holds it."""
    deadline = time.monotonic() + timeout
    while True:
        image = http.get(f"/v2/images/{image_id}").json()
        if image["status"] in until and not image.get("os_glance_import_task"):
            if prop is None or prop(image):
                return image
        if time.monotonic() > deadline:
            raise AssertionError(f"image {image_id} did not settle: {image}")
        time.sleep(0.05)


def wait_task(admin, task_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        task = admin.get(f"/v2/tasks/{task_id}").json()
        if task["status"] in ("success", "failure"):
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} did not finish: {task}")
        time.sleep(0.05)


def new_image(http, **extra) -> str:
    return http.create_image(disk_format="raw", container_format="bare", **extra)["id"]
