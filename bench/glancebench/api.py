"""A small Image API v2 client over one keep-alive ``http.client`` connection.

Plain HTTP so the harness measures the services, not a client library; http.client reopens
the connection by itself after a ``Connection: close`` answer (upstream sends one every time).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.parse


class ApiError(RuntimeError):
    pass


class Api:
    def __init__(self, url: str, token: str, timeout: float = 600.0):
        parsed = urllib.parse.urlsplit(url)
        self.url = url
        self.token = token
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)

    def close(self) -> None:
        self.conn.close()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                expect: tuple[int, ...] = (200,)) -> tuple[int, bytes]:  # fmt: skip
        hdrs = {"X-Auth-Token": self.token, **(headers or {})}
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
            ):
                # A keep-alive connection the server closed while idle: one retry on a new one.
                self.conn.close()
                if attempt:
                    raise
        if resp.status not in expect:
            raise ApiError(f"{method} {path}: HTTP {resp.status}: {data[:300]!r}")
        return resp.status, data

    def create_image(self, name: str, **extra) -> dict:
        body = json.dumps({"name": name, "disk_format": "raw", "container_format": "bare", **extra})
        _, data = self.request(
            "POST",
            "/v2/images",
            body.encode(),
            {"Content-Type": "application/json"},
            expect=(201,),
        )
        return json.loads(data)

    def upload(self, image_id: str, data: bytes) -> None:
        self.request(
            "PUT", f"/v2/images/{image_id}/file", data,
            {"Content-Type": "application/octet-stream"}, expect=(204,),
        )  # fmt: skip

    def get_image(self, image_id: str) -> dict:
        return json.loads(self.request("GET", f"/v2/images/{image_id}")[1])

    def list_images(self, limit: int) -> list[dict]:
        return json.loads(self.request("GET", f"/v2/images?limit={limit}")[1])["images"]

    def list_page(self, marker: str | None = None) -> list[dict]:
        """One page at the API's default page size (no ``limit``), after ``marker`` if given."""
        path = "/v2/images" + (f"?marker={marker}" if marker else "")
        return json.loads(self.request("GET", path)[1])["images"]

    def wait_active(self, image_id: str, timeout: float = 10.0) -> dict:
        """The image once it has left ``saving`` (a service may finish after answering)."""
        deadline = time.monotonic() + timeout
        while True:
            image = self.get_image(image_id)
            if image["status"] != "saving" or time.monotonic() > deadline:
                return image
            time.sleep(0.1)

    def sha512_of_data(self, image_id: str) -> str:
        """Downloads the image and returns the sha512 of what came back."""
        self.conn.request("GET", f"/v2/images/{image_id}/file", headers={"X-Auth-Token": self.token})
        resp = self.conn.getresponse()
        h = hashlib.sha512()
        while chunk := resp.read(4 << 20):
            h.update(chunk)
        if resp.status != 200:
            raise ApiError(f"GET /v2/images/{image_id}/file: HTTP {resp.status}")
        return h.hexdigest()
