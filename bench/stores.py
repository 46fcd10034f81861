"""Throughput of the image stores, the file store as the reference, on one machine in one run.

    .venv/bin/python bench/stores.py                    # 64 and 256 MiB, 3 rounds
    .venv/bin/python bench/stores.py --sizes 64 --rounds 1

Starts a real Keystone and a private Swift (service/tests/fixtures: Debian's swift packages,
Keystone from .venv-keystone) and three image services (glance-registry + glance-api, SQLite):
the file store, the swift store as configured by default (an image below 5 GB is one PUT) and
the swift store in segments (large objects from 32 MB in 32 MB segments). For every size and
round it uploads with Content-Length and downloads each store in turn, checks the sha512, and
records the client's MB/s and the API workers' peak RSS growth during the upload (memory must
stay flat whatever the size). Then the same data straight into Swift with one PUT and one GET
(the ceiling of this Swift on this machine), and the two upload paths of the swift store side by
side in this process without HTTP in front: glance_store 5.7's ``add()`` and ours
(glance_service/store/swift.py).

Prints a table of medians; ``--json FILE`` keeps every figure. Timings are never asserted; the
script fails only when something could not be measured (a service did not start, a hash differs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "service"))

from tests.fixtures.glance_procs import start_glance  # noqa: E402
from tests.fixtures.keystone import start_keystone  # noqa: E402
from tests.fixtures.swift import start_swift  # noqa: E402

MiB = 1024 * 1024
HEADERS = {"X-Project-Id": "bench", "X-User-Id": "bench", "X-Roles": "admin,member,reader"}
BLOCK = os.urandom(MiB)


class Body:
    """``size`` bytes with a Content-Length, made of one random MiB with a counter in front (no
    two MiB alike, generated as fast as a client can send); keeps the sha512 of what it sent."""

    def __init__(self, size: int):
        self.len = size
        self.sha512 = hashlib.sha512()

    def __iter__(self):
        sent, n = 0, 0
        while sent < self.len:
            piece = (n.to_bytes(8, "big") + BLOCK[8:])[: min(MiB, self.len - sent)]
            self.sha512.update(piece)
            sent += len(piece)
            n += 1
            yield piece


class Reader:
    """The same data as a file-like object, for the in-process writers (not hashed here: the
    writers' own hashing is what is measured)."""

    def __init__(self, size: int):
        self._it = (BLOCK[: min(MiB, size - off)] for off in range(0, size, MiB))
        self._rest = b""

    def read(self, n: int = -1) -> bytes:
        while len(self._rest) < n:
            more = next(self._it, b"")
            if not more:
                break
            self._rest += more
        out, self._rest = self._rest[:n], self._rest[n:]
        return out


class PeakRss:
    """Peak RSS growth of a process tree (the API's gunicorn master and workers) while running."""

    def __init__(self, pid: int):
        self.procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        self.base = {p.pid: p.memory_info().rss for p in self.procs}
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for p in self.procs:
                try:
                    self.peak = max(self.peak, p.memory_info().rss - self.base[p.pid])
                except psutil.Error:
                    pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def warm_up(procs) -> None:
    """A few small images through every API worker: each takes its Keystone token for the swift
    store once per process, which the figures should not include."""
    for _ in range(2 * procs.variables["glance_api_workers"]):
        measure_service("warm-up", procs, MiB)


def measure_service(name: str, procs, size: int) -> dict:
    api = procs.api_url
    image = requests.post(
        f"{api}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, headers=HEADERS
    ).json()["id"]
    body = Body(size)
    with PeakRss(procs.api.pid) as rss:
        start = time.monotonic()
        resp = requests.put(
            f"{api}/v2/images/{image}/file",
            data=body,
            headers={**HEADERS, "Content-Type": "application/octet-stream"},
        )
        up = time.monotonic() - start
    if resp.status_code != 204:
        raise SystemExit(f"{name}: upload answered {resp.status_code}: {resp.text[:300]}")
    sha = hashlib.sha512()
    start = time.monotonic()
    with requests.get(f"{api}/v2/images/{image}/file", headers=HEADERS, stream=True) as resp:
        for chunk in resp.iter_content(MiB):
            sha.update(chunk)
    down = time.monotonic() - start
    if sha.hexdigest() != body.sha512.hexdigest():
        raise SystemExit(f"{name}: the downloaded data differs from the uploaded")
    requests.delete(f"{api}/v2/images/{image}", headers=HEADERS)
    return {"upload": size / up / 1e6, "download": size / down / 1e6, "rss_growth_mib": rss.peak / MiB}


def measure_raw_swift(swift, size: int) -> dict:
    conn = swift.connection()
    url, token = conn.get_auth()
    conn.put_container("bench-raw")
    name = f"raw-{uuid.uuid4()}"
    with requests.Session() as s:
        start = time.monotonic()
        resp = s.put(f"{url}/bench-raw/{name}", data=Body(size), headers={"X-Auth-Token": token})
        up = time.monotonic() - start
        resp.raise_for_status()
        start = time.monotonic()
        with s.get(f"{url}/bench-raw/{name}", headers={"X-Auth-Token": token}, stream=True) as resp:
            for _ in resp.iter_content(MiB):
                pass
        down = time.monotonic() - start
    conn.delete_object("bench-raw", name)
    return {"upload": size / up / 1e6, "download": size / down / 1e6}


def swift_drivers(swift) -> dict:
    """glance_store swift drivers, in this process: one that writes an image below 5 GB with one
    PUT, one that writes large objects from 32 MB on in 32 MB segments."""
    import glance_store
    from glance_service.store import swift as ours
    from oslo_config import cfg

    drivers = {}
    for large_mb in (5 * 1024, 32):
        conf = cfg.ConfigOpts()
        glance_store.register_opts(conf)
        conf([], project="bench", default_config_files=[])
        opts = {"stores": ["swift"], "default_store": "swift"}
        opts.update(swift.glance_store_options(container="bench-inproc"))
        opts["swift_store_large_object_size"] = large_mb
        opts["swift_store_large_object_chunk_size"] = 32
        for key, value in opts.items():
            conf.set_override(key, value, group="glance_store")
        glance_store.create_stores(conf)
        # the scheme map is global: keep this driver before the next one replaces it there
        drivers[large_mb] = driver = glance_store.backend.get_store_from_scheme("swift+https")
        # ours keeps one Keystone token per process: take it before measuring
        image_id = str(uuid.uuid4())
        ours.add(driver, image_id, Reader(MiB), expected_size=MiB, size_cap=1 << 40)
        swift_delete(swift, "bench-inproc", image_id)
    return drivers


def in_process_writers(swift, driver, size: int) -> dict:
    """glance_store's add() against ours on the same driver, no HTTP in front. The size is
    declared only when the image is one PUT: glance_store's declared-size segmented path hangs
    on a short last segment (see glance_service/store/swift.py), so segments go unknown-size."""
    from glance_service.store import swift as ours

    declared = size < driver.large_object_size
    out = {}
    for label in ("glance_store", "ours"):
        image_id = str(uuid.uuid4())
        start = time.monotonic()
        if label == "ours":
            ours.add(
                driver, image_id, Reader(size), expected_size=size if declared else None, size_cap=1 << 40
            )
        else:
            driver.add(image_id, Reader(size), size if declared else 0, "sha512")
        out[label] = size / (time.monotonic() - start) / 1e6
        swift_delete(swift, "bench-inproc", image_id)
    return out


def swift_delete(swift, container: str, image_id: str) -> None:
    conn = swift.connection()
    for name in swift.objects(container):
        if name == image_id or name.startswith(f"{image_id}-"):
            conn.delete_object(container, name)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="64,256", help="image sizes in MiB (default 64,256)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    sizes = [int(s) * MiB for s in args.sizes.split(",")]

    work = Path(tempfile.mkdtemp(prefix="bench-stores-"))
    ks = start_keystone(work / "keystone")
    services: dict = {}
    swift = None
    try:
        swift = start_swift(work / "swift", ks)
        services["file"] = start_glance(work / "file")
        base = {"stores": "file,http,swift", "default_store": "swift"}
        services["swift"] = start_glance(
            work / "swift-one-put", extra_api={"glance_store": {**base, **swift.glance_store_options()}}
        )
        segmented = swift.glance_store_options(
            container="glance-seg", swift_store_large_object_size=32, swift_store_large_object_chunk_size=32
        )
        services["swift-segments"] = start_glance(
            work / "swift-segments", extra_api={"glance_store": {**base, **segmented}}
        )
        drivers = swift_drivers(swift)
        for procs in services.values():
            warm_up(procs)
        figures: dict = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()}, "runs": []}
        for size in sizes:
            for rnd in range(args.rounds):
                for name, procs in services.items():
                    fig = measure_service(name, procs, size)
                    figures["runs"].append({"store": name, "size_mib": size // MiB, "round": rnd, **fig})
                fig = measure_raw_swift(swift, size)
                figures["runs"].append(
                    {"store": "swift-direct", "size_mib": size // MiB, "round": rnd, **fig}
                )
                for large_mb, mode in ((5 * 1024, "one PUT"), (32, "segments, unknown size")):
                    fig = in_process_writers(swift, drivers[large_mb], size)
                    for label, mbps in fig.items():
                        figures["runs"].append(
                            {
                                "store": f"writer {label} ({mode})",
                                "size_mib": size // MiB,
                                "round": rnd,
                                "upload": mbps,
                            }
                        )
        figures["machine"]["load_after"] = os.getloadavg()
    finally:
        for procs in services.values():
            procs.stop()
        if swift is not None:
            swift.stop()
        ks.stop()

    print(
        f"\nload average before/after: {figures['machine']['load_before']} / "
        f"{figures['machine']['load_after']}"
    )
    print(f"{'store':44} {'MiB':>5} {'upload MB/s':>12} {'download MB/s':>14} {'RSS +MiB':>9}")
    keys = sorted({(r["store"], r["size_mib"]) for r in figures["runs"]}, key=lambda k: (k[1], k[0]))
    for store, size_mib in keys:
        runs = [r for r in figures["runs"] if (r["store"], r["size_mib"]) == (store, size_mib)]
        up = median([r["upload"] for r in runs])
        down = median([r["download"] for r in runs if "download" in r])
        rss = max((r.get("rss_growth_mib", float("nan")) for r in runs), default=float("nan"))
        print(f"{store:44} {size_mib:5} {up:12.1f} {down:14.1f} {rss:9.1f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
