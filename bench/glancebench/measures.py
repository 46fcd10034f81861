"""The measurements, each run against one image service (a ``Target``).

Every function returns plain numbers (rates in MB/s = 10^6 bytes/s, latencies in ms) and
raises when the service answered wrongly, so a broken service cannot produce a figure.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from glancebench import seed, spy
from glancebench.api import Api, ApiError
from glancebench.procs import CpuMeter, RssSampler

MB = 1_000_000
CLIENT_PYTHON = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python"
GC_CLIENT = Path(__file__).with_name("gc_client.py")
# The Image API's default page size (upstream's ``limit_param_default``), used by the listings
# of the "deep" group, which send no ``limit``.
DEFAULT_PAGE = 25


class Target(Protocol):
    name: str
    db_url: str

    @property
    def url(self) -> str: ...

    @property
    def store_dir(self) -> Path: ...

    def root_pids(self) -> list[int]: ...

    def process_roots(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class Blob:
    """A file of random bytes with its known sha512 (what every upload is checked against)."""

    path: Path
    size: int
    sha512: str


@dataclass(frozen=True)
class Plan:
    big: Blob
    parallel: list[Blob]
    small_count: int
    list_reps: int
    get_seconds: int
    get_clients: tuple[int, ...]
    # Which groups of measurements run (all by default): "big" (1 GiB uploads, downloads, RSS,
    # boot storm), "small" (small creations, list, concurrent GETs), "parallel" (8 concurrent
    # uploads), "deep" (listing with many records written into the database).
    groups: frozenset[str] = frozenset({"big", "small", "parallel", "deep"})
    # Clean-up between rounds (not timed) with this many clients: 4 on MariaDB; 1 on SQLite,
    # where upstream answers concurrent writes with 500 "database is locked".
    delete_workers: int = 1
    # Boot storm: this many simultaneous downloads of the big image.
    storm_clients: int = 32
    # Deep listing: records in the database for the small and the large case.
    deep_counts: tuple[int, int] = (1000, 100_000)
    # Shared servers (Keystone, memcached, MariaDB) by name -> PID, for the CPU profile.
    shared: dict[str, int] = field(default_factory=dict)
    # --profile: py-spy output goes here (the first GET run of each service is sampled).
    profile_dir: Path | None = None


GROUPS = ("big", "small", "parallel", "deep")


def _cpu_groups(target: Target, plan: Plan) -> dict[str, tuple[int, bool]]:
    """The processes whose CPU is counted: the service's (masters split from workers) and the
    shared servers' (each as one)."""
    groups = {name: (pid, True) for name, pid in target.process_roots().items()}
    groups.update({name: (pid, False) for name, pid in plan.shared.items()})
    return groups


def cpu_profile(seconds: dict[str, float], requests: int, service: list[str]) -> dict:
    """CPU ms per request by kind of process, and the service's own total (its processes, not
    the shared servers): what the round's JSON keeps."""
    per = {kind: s * 1000 / requests for kind, s in sorted(seconds.items())} if requests else {}
    total = sum(v for kind, v in per.items() if kind.split(" ")[0] in service)
    return {"requests": requests, "ms_per_request": per, "service_ms_per_request": total}


def _check_image(api: Api, image_id: str, blob: Blob) -> None:
    image = api.wait_active(image_id)
    if image["status"] != "active" or image.get("size") != blob.size:
        raise RuntimeError(f"image {image_id}: status {image['status']}, size {image.get('size')}")
    if image.get("os_hash_value") != blob.sha512:
        raise RuntimeError(f"image {image_id}: os_hash_value does not match the data sent")


def _curl_upload(url: str, token: str, image_id: str, path: Path) -> tuple[int, float]:
    # No "Expect: 100-continue": uwsgi's http-socket never answers it, so curl would wait its
    # 1 s timeout before sending the body to upstream; the figure is the data path, not that.
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-X", "PUT",
         "-H", f"X-Auth-Token: {token}", "-H", "Content-Type: application/octet-stream",
         "-H", "Expect:", "-T", str(path), f"{url}/v2/images/{image_id}/file"],
        check=False, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    code, seconds = out.stdout.split()
    return int(code), float(seconds)


def upload_curl(target: Target, token: str, blob: Blob) -> tuple[dict, str]:
    """``curl -T`` (Content-Length) upload, with the service's tree RSS sampled meanwhile."""
    api = Api(target.url, token)
    image = api.create_image("bench-curl-upload")
    with RssSampler(target.root_pids()) as rss:
        code, seconds = _curl_upload(target.url, token, image["id"], blob.path)
    if code != 204:
        raise RuntimeError(f"{target.name}: curl upload answered HTTP {code}")
    _check_image(api, image["id"], blob)
    api.close()
    return {
        "upload_curl_MBps": blob.size / seconds / MB,
        "upload_peak_rss_MiB": rss.peak / 2**20,
        "upload_peak_pss_MiB": rss.peak_pss / 2**20,
        "idle_rss_MiB": rss.baseline / 2**20,
        # How many processes the RSS sums (masters and workers): proof the whole service counts.
        "rss_processes": rss.processes,
    }, image["id"]


def _gc(op: str, target: Target, token: str, image_id: str, path: Path | None = None) -> float:
    argv = [str(CLIENT_PYTHON), str(GC_CLIENT), op, target.url, token, image_id]
    if path:
        argv.append(str(path))
    out = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"{target.name}: glanceclient {op} failed: {out.stderr[-1500:]}")
    result = json.loads(out.stdout)
    return result["bytes"] / result["seconds"] / MB


def upload_glanceclient(target: Target, token: str, blob: Blob) -> tuple[dict, str]:
    api = Api(target.url, token)
    image = api.create_image("bench-gc-upload")
    rate = _gc("upload", target, token, image["id"], blob.path)
    _check_image(api, image["id"], blob)
    api.close()
    return {"upload_glanceclient_MBps": rate}, image["id"]


def download_curl(target: Target, token: str, image_id: str, blob: Blob) -> dict:
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
         "-H", f"X-Auth-Token: {token}", f"{target.url}/v2/images/{image_id}/file"],
        check=False, capture_output=True, text=True, timeout=3600,
    ).stdout.split()  # fmt: skip
    code, size, seconds = int(out[0]), int(out[1]), float(out[2])
    if code != 200 or size != blob.size:
        raise RuntimeError(f"{target.name}: curl download: HTTP {code}, {size} of {blob.size} bytes")
    return {"download_curl_MBps": size / seconds / MB}


def download_glanceclient(target: Target, token: str, image_id: str) -> dict:
    return {"download_glanceclient_MBps": _gc("download", target, token, image_id)}


def create_small(target: Target, token: str, count: int, plan: Plan | None = None) -> tuple[dict, list[str]]:
    """POST + PUT 1 KiB, ``count`` times in a row on one connection: images/s (and the CPU
    the processes spent meanwhile)."""
    api = Api(target.url, token)
    payload = b"\x5a" * 1024
    ids = []
    meter = CpuMeter(_cpu_groups(target, plan) if plan else {})
    with meter:
        start = time.perf_counter()
        for i in range(count):
            image = api.create_image(f"bench-small-{i}")
            api.upload(image["id"], payload)
            ids.append(image["id"])
        seconds = time.perf_counter() - start
    last = api.get_image(ids[-1])
    api.close()
    if last["status"] != "active" or last["size"] != 1024:
        raise RuntimeError(f"{target.name}: small image ended {last['status']} size {last['size']}")
    profile = cpu_profile(meter.seconds, count, list(target.process_roots()))
    figures = {"small_create_per_s": count / seconds, "cpu_ms_per_create": profile["service_ms_per_request"]}
    return figures | {"cpu_create": profile}, ids


def list_latency(target: Target, token: str, expected: int, reps: int) -> dict:
    """``GET /v2/images?limit=1000`` ``reps`` times: median and p90 latency in ms."""
    api = Api(target.url, token)
    api.list_images(1000)  # warm-up: first use of the connection and caches
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        images = api.list_images(1000)
        times.append((time.perf_counter() - start) * 1000)
        if len(images) != min(expected, 1000):
            raise RuntimeError(f"{target.name}: list returned {len(images)} images, expected {expected}")
    api.close()
    return {
        "list_median_ms": statistics.median(times),
        "list_p90_ms": _percentile(times, 90),
    }


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[k]


_WRK_SCRIPT = """
ids = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/v2/images/" .. ids[(counter %% #ids) + 1])
end
"""

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict:
    """Requests/s, p99 latency and errors (non-2xx answers plus socket errors) from wrk --latency."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(x) for x in m.groups())
    return {"rps": rps, "p99_ms": p99, "errors": errors, "requests": total}


def _wrk(target: Target, token: str, script: str, clients: int, seconds: int) -> str:
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "--timeout", "10s", "--latency",
         "-H", f"X-Auth-Token: {token}", "-s", script, target.url],
        check=False, capture_output=True, text=True, timeout=seconds + 120,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr[-500:]}")
    return out.stdout


def concurrent_get(
    target: Target,
    token: str,
    ids: list[str],
    clients: int,
    seconds: int,
    plan: Plan | None = None,
    profile: bool = False,
) -> tuple[dict, dict[str, float], int]:
    """wrk with ``clients`` connections doing ``GET /v2/images/{id}`` over ``ids`` for ``seconds``,
    after an unrecorded warm-up at the same concurrency: the figure is the steady state, not the
    first use of every worker thread's database and registry connections. Also the CPU seconds
    by kind of process during the recorded run, and its number of requests. ``profile``: py-spy
    samples the service during the recorded run (``plan.profile_dir``); its top functions go
    into the figures as ``spy_get``."""
    spy_dir = (
        plan.profile_dir / f"{target.name}-c{clients}" if profile and plan and plan.profile_dir else None
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % ", ".join(f'"{i}"' for i in ids[:200]))
    try:
        _wrk(target, token, script.name, clients, max(1, min(5, seconds // 4)))
        sampling = (
            spy.record(target.process_roots(), seconds, spy_dir) if spy_dir else contextlib.nullcontext()
        )
        with sampling as top, CpuMeter(_cpu_groups(target, plan) if plan else {}) as meter:
            result = parse_wrk(_wrk(target, token, script.name, clients, seconds))
    finally:
        Path(script.name).unlink()
    figures = {f"get_c{clients}_{k}": v for k, v in result.items() if k != "requests"}
    if spy_dir:
        figures["spy_get"] = top
    return figures, meter.seconds, result["requests"]


def boot_storm(target: Target, token: str, image_id: str, blob: Blob, clients: int) -> dict:
    """``clients`` simultaneous ``curl -o /dev/null`` of one image: aggregate MB/s over the wall
    time (complete downloads only) and the downloads that failed or came back short."""
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
            "-H", f"X-Auth-Token: {token}", f"{target.url}/v2/images/{image_id}/file"]  # fmt: skip
    start = time.perf_counter()
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(clients)
    ]
    answers = [p.communicate(timeout=3600)[0].split() for p in procs]
    wall = time.perf_counter() - start
    good = sum(1 for a in answers if len(a) == 2 and a[0] == "200" and int(a[1]) == blob.size)
    return {
        "storm_MBps": good * blob.size / wall / MB,
        "storm_errors": clients - good,
        "storm_clients": clients,
    }


def _deep_pages(api: Api, name: str, seeded: list[seed.Seeded], reps: int) -> tuple[float, float]:
    """Median ms of the first page and of the page after a marker half way down, each checked."""
    marker, expected = seed.marker_and_next(seeded, DEFAULT_PAGE)
    api.list_page()  # warm-up
    api.list_page(marker)
    first, deep = [], []
    for _ in range(reps):
        start = time.perf_counter()
        page = api.list_page()
        first.append((time.perf_counter() - start) * 1000)
        if len(page) != DEFAULT_PAGE:
            raise RuntimeError(f"{name}: first page has {len(page)} images, expected {DEFAULT_PAGE}")
        start = time.perf_counter()
        page = api.list_page(marker)
        deep.append((time.perf_counter() - start) * 1000)
        if [image["id"] for image in page] != expected:
            raise RuntimeError(f"{name}: the page after marker {marker} is not the expected one")
    return statistics.median(first), statistics.median(deep)


def deep_listing(target: Target, token: str, plan: Plan, log=print) -> dict:
    """Default-size pages (first, and after a marker half way) with ``plan.deep_counts`` records
    written into the database (seed.py), the small count first; the records are removed after."""
    api = Api(target.url, token)
    probe = api.create_image("bench-deep-probe")
    delete_all(target, token, [probe["id"]])
    project, other = probe["owner"], uuid.uuid4().hex
    small, big = plan.deep_counts
    out: dict = {"deep_records": [small, big]}
    try:
        seeded: list[seed.Seeded] = []
        for stage, count in (("small", small), ("big", big)):
            log(f"  {target.name}: {count} records in the database, listing")
            start = time.perf_counter()
            seeded += seed.seed(
                target.db_url, target.store_dir, project, other, len(seeded), count - len(seeded)
            )
            out[f"deep_{stage}_seed_s"] = round(time.perf_counter() - start, 1)
            first, deep = _deep_pages(api, target.name, seeded, plan.list_reps)
            out[f"deep_{stage}_first_ms"], out[f"deep_{stage}_marker_ms"] = first, deep
        out["deep_first_growth"] = out["deep_big_first_ms"] / out["deep_small_first_ms"]
        out["deep_marker_growth"] = out["deep_big_marker_ms"] / out["deep_small_marker_ms"]
    finally:
        api.close()
        seed.remove(target.db_url)
    return out


def concurrent_uploads(target: Target, token: str, blobs: list[Blob]) -> dict:
    """``len(blobs)`` simultaneous ``curl -T`` uploads; every image's sha512 checked twice:
    the recorded ``os_hash_value`` and the sha512 of the data downloaded back."""
    api = Api(target.url, token)
    images = [api.create_image(f"bench-parallel-{i}")["id"] for i in range(len(blobs))]
    results: list[tuple[int, float] | Exception] = [None] * len(blobs)  # type: ignore[list-item]
    barrier = threading.Barrier(len(blobs))

    def one(i: int) -> None:
        barrier.wait(30)
        try:
            results[i] = _curl_upload(target.url, token, images[i], blobs[i].path)
        except Exception as exc:  # noqa: BLE001 - counted as an error below
            results[i] = exc

    start = time.perf_counter()
    with ThreadPoolExecutor(len(blobs)) as pool:
        list(pool.map(one, range(len(blobs))))
    wall = time.perf_counter() - start
    ok = [not isinstance(r, Exception) and r[0] == 204 for r in results]
    errors = ok.count(False)
    verified = 0
    for image_id, blob in zip(images, blobs, strict=True):
        try:
            _check_image(api, image_id, blob)
            if api.sha512_of_data(image_id) == blob.sha512:
                verified += 1
        except Exception as exc:  # noqa: BLE001 - an unverified image is the finding
            print(
                f"bench: {target.name}: image {image_id} not verified: {exc}",
                file=sys.stderr,
            )
    api.close()
    delete_all(target, token, images)
    return {
        # Only what was stored counts: failed uploads end early and would inflate the rate.
        "parallel_upload_MBps": sum(b.size for b, good in zip(blobs, ok, strict=True) if good) / wall / MB,
        "parallel_upload_errors": errors,
        "parallel_sha512_verified": verified,
        "parallel_uploads": len(blobs),
    }


def delete_all(target: Target, token: str, ids: list[str], workers: int = 1) -> None:
    """Removes the round's images (not timed) so every round starts from the same state.

    Each delete is retried: upstream on SQLite answers 500 ("database is locked") to concurrent
    writes, and cleaning up must not turn into a measurement of that. ``workers`` clients
    share the list (each its own connection)."""
    if workers > 1 and len(ids) > 1:
        parts = [ids[i::workers] for i in range(workers)]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda part: delete_all(target, token, part), parts))
        return
    api = Api(target.url, token)
    for image_id in ids:
        for attempt in range(5):
            status, _ = api.request("DELETE", f"/v2/images/{image_id}", expect=(204, 404, 400, 409, 500, 503))
            if status in (204, 404) or (attempt and status == 400):
                # 400 after a failed attempt: the earlier DELETE took effect (deleted -> deleted).
                break
            time.sleep(0.2 * (attempt + 1))
        else:
            print(f"bench: {target.name}: could not delete image {image_id}", file=sys.stderr)
    api.close()


WARM_UP_CONNECTIONS = 16


def warm_up(target: Target, token: str, connections: int = WARM_UP_CONNECTIONS, requests: int = 5) -> int:
    """A few listings over ``connections`` connections at once, before anything is measured.

    Each worker's first request pays one-off costs (keystonemiddleware logs the service user in
    to Keystone: a bcrypt password check; lazy imports; connection pools). A measurement on
    one connection (the small creations) would otherwise meet them whenever it lands on a
    worker no earlier measurement reached, and bill them to its requests (Keystone's CPU per
    create in ``--only small`` runs)."""

    def client(_: int) -> int:
        api = Api(target.url, token)
        failed = 0
        try:
            for _ in range(requests):
                try:
                    api.list_images(1)
                except (ApiError, OSError):
                    # Not a measurement: counted and reported, the run goes on. (A cold
                    # Keystone worker used to refuse token validations while it loaded its
                    # policy, which the API answers 503: roles/keystone's gunicorn hook.)
                    failed += 1
        finally:
            api.close()
        return failed

    with ThreadPoolExecutor(connections) as pool:
        return sum(pool.map(client, range(connections)))


def run_suite(target: Target, token: str, plan: Plan, log=print) -> dict:
    """Every measurement once against ``target``; leaves no image behind (unless interrupted:
    then the services are stopped and their stores removed without deleting image by image)."""
    out: dict = {}
    ids: list[str] = []
    # Wall time of each group (and of the clean-up), to see where a long run goes.
    steps: dict[str, float] = {}
    out["step_seconds"] = steps
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        steps[name] = round(now - mark, 1)
        mark = now

    try:
        out["warm_up_errors"] = warm_up(target, token)
        if out["warm_up_errors"]:
            log(f"  {target.name}: warm-up: {out['warm_up_errors']} requests failed")
        lap("warm_up")
        if "big" in plan.groups:
            log(f"  {target.name}: upload {plan.big.size >> 20} MiB with curl -T")
            figures, curl_id = upload_curl(target, token, plan.big)
            out.update(figures)
            ids.append(curl_id)
            log(f"  {target.name}: upload with glanceclient (chunked)")
            figures, gc_id = upload_glanceclient(target, token, plan.big)
            out.update(figures)
            ids.append(gc_id)
            log(f"  {target.name}: downloads")
            out.update(download_curl(target, token, curl_id, plan.big))
            out.update(download_glanceclient(target, token, gc_id))
            log(f"  {target.name}: boot storm, {plan.storm_clients} downloads at once")
            out.update(boot_storm(target, token, curl_id, plan.big, plan.storm_clients))
            ids, done = [], ids
            delete_all(target, token, done, plan.delete_workers)
            lap("big")
        if "small" in plan.groups:
            log(f"  {target.name}: create {plan.small_count} small images")
            figures, ids = create_small(target, token, plan.small_count, plan)
            out.update(figures)
            log(f"  {target.name}: list latency")
            out.update(list_latency(target, token, plan.small_count, plan.list_reps))
            cpu: dict[str, float] = {}
            requests = 0
            for clients in plan.get_clients:
                log(f"  {target.name}: {clients} concurrent GET clients for {plan.get_seconds}s")
                first = clients == plan.get_clients[0]
                figures, seconds, count = concurrent_get(
                    target, token, ids, clients, plan.get_seconds, plan, profile=first
                )
                out.update(figures)
                requests += count
                for kind, s in seconds.items():
                    cpu[kind] = cpu.get(kind, 0.0) + s
            out["cpu_get"] = cpu_profile(cpu, requests, list(target.process_roots()))
            out["cpu_ms_per_get"] = out["cpu_get"]["service_ms_per_request"]
            lap("small")
        if "parallel" in plan.groups:
            count, mib = len(plan.parallel), plan.parallel[0].size >> 20
            log(f"  {target.name}: {count} concurrent uploads of {mib} MiB")
            out.update(concurrent_uploads(target, token, plan.parallel))
            lap("parallel")
        ids, done = [], ids
        delete_all(target, token, done, plan.delete_workers)
        lap("cleanup")
        if "deep" in plan.groups:
            out.update(deep_listing(target, token, plan, log))
            lap("deep")
    except KeyboardInterrupt:
        raise
    except BaseException:
        delete_all(target, token, ids, plan.delete_workers)
        raise
    return out
