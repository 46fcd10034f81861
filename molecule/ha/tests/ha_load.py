"""A client load through the VIP, as a cloud's users make it: openstacksdk with the lab's CA.

Four kinds of worker, each on its own connection, each request recorded with its start and end
time (wall clock: the lab hosts share this machine's clock, so HAProxy's journal lines compare):
  upload   64 MiB images (sha512 known), each downloaded again and its sha512 compared
  get      GET /v2/images/{id} of images made at the start
  list     GET /v2/images?limit=20
  churn    POST /v2/images then DELETE it
Images a worker created and the service acknowledged are kept in `acknowledged` (id -> sha512 or
None for records without data), so a phase can check afterwards that none was lost.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass, field

import openstack

MIB = 1 << 20


@dataclass
class Event:
    kind: str
    start: float
    end: float
    ok: bool
    error: str = ""


@dataclass
class Cloud:
    auth_url: str
    password: str
    cacert: str | bool
    user: str = "admin"
    project: str = "admin"
    region: str = "RegionOne"

    def connect(self, **extra) -> openstack.connection.Connection:
        return openstack.connect(
            auth_url=self.auth_url,
            username=self.user,
            password=self.password,
            project_name=self.project,
            user_domain_name="Default",
            project_domain_name="Default",
            region_name=self.region,
            interface="public",
            cacert=self.cacert,
            # A request in flight on a host that dies gets no answer: HAProxy waits for that
            # server up to its image timeout (hours; docs/HA.md). The client gives up first.
            api_timeout=120,
            **extra,
        )


def image_body(name: str) -> dict:
    return {"name": name, "disk_format": "raw", "container_format": "bare"}


def create(conn, name: str) -> str:
    resp = conn.image.post("/images", json=image_body(name), raise_exc=True)
    return resp.json()["id"]


def upload(conn, image_id: str, data: bytes) -> bool:
    def chunks():
        for offset in range(0, len(data), MIB):
            yield data[offset : offset + MIB]

    conn.image.put(
        f"/images/{image_id}/file",
        data=chunks(),
        headers={"Content-Type": "application/octet-stream"},
        raise_exc=True,
    )
    return True


def download_sha512(conn, image_id: str) -> str:
    digest = hashlib.sha512()
    resp = conn.image.get(f"/images/{image_id}/file", stream=True, raise_exc=True)
    for chunk in resp.iter_content(MIB):
        digest.update(chunk)
    return digest.hexdigest()


def record(conn, image_id: str) -> dict:
    return conn.image.get(f"/images/{image_id}", raise_exc=True).json()


def listing(conn) -> dict:
    return conn.image.get("/images?limit=20", raise_exc=True).json()


def delete(conn, image_id: str) -> bool:
    conn.image.delete(f"/images/{image_id}", raise_exc=True)
    return True


@dataclass
class Load:
    cloud: Cloud
    upload_mib: int = 64
    events: list[Event] = field(default_factory=list)
    acknowledged: dict[str, str | None] = field(default_factory=dict)
    keep_churn: bool = False

    def __post_init__(self):
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.seed_ids: list[str] = []

    # -- bookkeeping -------------------------------------------------------------------------
    def _timed(self, kind: str, fn, *args):
        start = time.time()
        try:
            result = fn(*args)
        except Exception as exc:  # every failure counts, whatever raised it
            self._add(Event(kind, start, time.time(), False, f"{type(exc).__name__}: {exc}"[:300]))
            return None
        self._add(Event(kind, start, time.time(), True))
        return result

    def _add(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def _ack(self, image_id: str, sha: str | None) -> None:
        with self._lock:
            self.acknowledged[image_id] = sha

    # -- workers -----------------------------------------------------------------------------
    def _uploader(self) -> None:
        conn = self.cloud.connect()
        n = 0
        while not self._stop.wait(1):
            n += 1
            data = os.urandom(self.upload_mib * MIB)
            sha = hashlib.sha512(data).hexdigest()
            image_id = self._timed("create", create, conn, f"ha-load-{n}")
            if image_id is None:
                time.sleep(0.2)
                continue
            if self._timed("upload", upload, conn, image_id, data) is None:
                # Not acknowledged: the service may or may not have it; only its record counts.
                self._ack(image_id, None)
                continue
            self._ack(image_id, sha)
            got = self._timed("download", download_sha512, conn, image_id)
            if got is not None and got != sha:
                now = time.time()
                self._add(Event("download-sha512", now, now, False, f"{image_id}: sha512 differs"))

    def _getter(self) -> None:
        conn = self.cloud.connect()
        i = 0
        while not self._stop.wait(0.05):
            image_id = self.seed_ids[i % len(self.seed_ids)]
            i += 1
            self._timed("get", record, conn, image_id)

    def _lister(self) -> None:
        conn = self.cloud.connect()
        while not self._stop.wait(0.3):
            self._timed("list", listing, conn)

    def _churner(self) -> None:
        conn = self.cloud.connect()
        n = 0
        while not self._stop.wait(0.2):
            n += 1
            image_id = self._timed("create", create, conn, f"ha-churn-{n}")
            if image_id is None:
                continue
            if self.keep_churn:
                self._ack(image_id, None)
                continue
            self._timed("delete", delete, conn, image_id)

    # -- control -----------------------------------------------------------------------------
    def seed(self, count: int = 5) -> None:
        conn = self.cloud.connect()
        for n in range(count):
            image_id = create(conn, f"ha-seed-{n}")
            data = os.urandom(MIB)
            upload(conn, image_id, data)
            self.seed_ids.append(image_id)
            self._ack(image_id, hashlib.sha512(data).hexdigest())

    def start(self) -> None:
        if not self.seed_ids:
            self.seed()
        self._stop.clear()
        for target in (self._uploader, self._getter, self._getter, self._lister, self._churner):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=600)
        self._threads.clear()

    def take_events(self) -> list[Event]:
        with self._lock:
            events, self.events = self.events, []
        return events


def failures(events: list[Event], after: float | None = None) -> list[Event]:
    return [e for e in events if not e.ok and (after is None or e.start > after)]


def summary(events: list[Event]) -> str:
    kinds: dict[str, list[int]] = {}
    for event in events:
        ok_failed = kinds.setdefault(event.kind, [0, 0])
        ok_failed[0 if event.ok else 1] += 1
    total_failed = sum(f for _, f in kinds.values())
    parts = ", ".join(f"{k} {o + f}/{f} failed" for k, (o, f) in sorted(kinds.items()))
    return f"{total_failed} failed of {len(events)} requests ({parts})"


def check_acknowledged(cloud: Cloud, acknowledged: dict[str, str | None]) -> list[str]:
    """Problems with acknowledged images: gone, not active, left saving/importing, wrong sha512."""
    conn = cloud.connect()
    problems = []
    for image_id, sha in acknowledged.items():
        try:
            rec = record(conn, image_id)
        except Exception as exc:
            problems.append(f"{image_id}: {type(exc).__name__}: {exc}"[:200])
            continue
        if rec["status"] in ("saving", "importing"):
            problems.append(f"{image_id}: left {rec['status']}")
        elif sha is not None:
            if rec["status"] != "active" or rec.get("os_hash_value") != sha:
                problems.append(f"{image_id}: {rec['status']}, os_hash_value {rec.get('os_hash_value')}")
            elif download_sha512(conn, image_id) != sha:
                problems.append(f"{image_id}: downloaded sha512 differs")
    return problems


def stuck_images(cloud: Cloud) -> list[str]:
    conn = cloud.connect()
    stuck = []
    for status in ("saving", "importing"):
        body = conn.image.get(f"/images?status={status}&limit=1000", raise_exc=True).json()
        stuck += [f"{i['id']} {status}" for i in body["images"]]
    return stuck


def delete_all(cloud: Cloud, ids) -> None:
    conn = cloud.connect()
    for image_id in ids:
        conn.image.delete(f"/images/{image_id}", raise_exc=False)
