"""Run tempest in a workspace and leave its reports in one directory (roles/tempest).

Run with the tempest virtualenv's Python. Steps:

1. With ``--serve-for HOST``: serve a small qcow2 image over HTTP from this host, on the
   address that routes to HOST (the first glance-api host), for the tests that need an image
   URL the image service can fetch (web-download, locations). Lab and production API hosts
   often have no internet, so tempest's default (download.cirros-cloud.net) would fail.
2. ``stestr run`` in the workspace (its .stestr.conf, written here, points at the installed
   tempest's test discovery; TEMPEST_CONFIG_DIR at its etc/), console output to ``console.log``.
3. ``stestr last --subunit`` -> ``tempest.subunit``; from it ``tempest.html`` (subunit2html),
   ``junit.xml`` (subunit2junitxml), ``skipped.txt``; ``tempest.txt`` is ``stestr last``
   (subunit-trace: every test, the failures' details, totals).
4. Counts, failed tests and skip reasons -> ``summary.json``, also printed as the last line;
   ``<results>/../latest`` points at this run's directory.

Exit status 0 whenever the stream could be read, with or without failed tests: the caller
decides (the playbook fails on ``failed > 0``). Non-zero: the run itself broke.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

IMAGE_NAME = "tempest-image.qcow2"
PASSED = {"success", "xfail"}
FAILED = {"fail", "uxsuccess"}


def qcow2_image(virtual_size: int = 1 << 20, cluster_bits: int = 16) -> bytes:
    """A valid, empty qcow2 (version 3) image: header, refcount table and block, L1 table,
    one cluster each. Deterministic, so its hashes are the same on every run."""
    cluster = 1 << cluster_bits
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        b"QFI\xfb",
        3,  # version
        0,  # backing_file_offset: none
        0,  # backing_file_size
        cluster_bits,
        virtual_size,
        0,  # crypt_method
        1,  # l1_size: one L2 table covers 512 MiB
        3 * cluster,  # l1_table_offset
        1 * cluster,  # refcount_table_offset
        1,  # refcount_table_clusters
        0,  # nb_snapshots
        0,  # snapshots_offset
        0,  # incompatible_features
        0,  # compatible_features
        0,  # autoclear_features
        4,  # refcount_order: 16-bit refcounts
        104,  # header_length
    )
    image = bytearray(4 * cluster)
    image[: len(header)] = header
    struct.pack_into(">Q", image, cluster, 2 * cluster)  # refcount table -> block
    for index in range(4):  # clusters 0-3 are in use once each
        struct.pack_into(">H", image, 2 * cluster + 2 * index, 1)
    return bytes(image)


def route_source(host: str) -> str:
    """This host's address on the route to ``host`` (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, 9))
        return sock.getsockname()[0]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    log_file: Path | None = None

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        if self.log_file is not None:
            with self.log_file.open("a") as f:
                f.write(f"{self.address_string()} {format % args}\n")


def serve_image(directory: Path, address: str, port: int, log_file: Path) -> http.server.ThreadingHTTPServer:
    directory.mkdir(parents=True, exist_ok=True)
    image = directory / IMAGE_NAME
    data = qcow2_image()
    if not image.exists() or image.read_bytes() != data:
        image.write_bytes(data)
    QuietHandler.log_file = log_file
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((address, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_stestr_conf(workspace: Path) -> None:
    import tempest

    top = Path(tempest.__file__).resolve().parent
    text = f"[DEFAULT]\ntest_path={top / 'test_discover'}\ntop_dir={top}\ngroup_regex=([^\\.]*\\.)*\n"
    conf = workspace / ".stestr.conf"
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)


def run(argv: list[str], cwd: Path, env: dict[str, str], out: Path, timeout: float | None = None) -> int:
    with out.open("wb") as f:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            f.write(f"\ntempest_run: stopped after {timeout:.0f} s\n".encode())
            return -1


def read_stream(path: Path) -> list[dict]:
    """Every test's final record (id, status, details) from a subunit v2 stream."""
    import subunit
    import testtools

    tests: list[dict] = []
    with path.open("rb") as f:
        case = subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout")
        result = testtools.StreamToDict(tests.append)
        result.startTestRun()
        try:
            case.run(result)
        finally:
            result.stopTestRun()
    return [t for t in tests if t["status"] not in ("exists", "inprogress", None)]


def detail_text(test: dict, name: str) -> str:
    content = test["details"].get(name)
    return content.as_text().strip() if content is not None else ""


def summarise(tests: list[dict]) -> dict:
    passed = [t for t in tests if t["status"] in PASSED]
    failed = [t for t in tests if t["status"] in FAILED]
    skipped = [t for t in tests if t["status"] == "skip"]
    return {
        "passed": len(passed),
        "failed": len(failed),
        "skipped": len(skipped),
        "failed_tests": sorted(t["id"] for t in failed),
        "skipped_tests": sorted(
            ({"id": t["id"], "reason": detail_text(t, "reason") or "(no reason given)"} for t in skipped),
            key=lambda s: s["id"],
        ),
    }


def next_stream(workspace: Path) -> int:
    """The id stestr gives the next run (0 before the repository exists)."""
    path = workspace / ".stestr" / "next-stream"
    return int(path.read_text().strip() or 0) if path.exists() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True, help="directory of this run's reports")
    parser.add_argument("--regex", required=True)
    parser.add_argument(
        "--exclude",
        default="[]",
        help='JSON list of {"regex": ..., "reason": ...}: tests not run, reported with their reason',
    )
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--serve-for", help="serve the test image on the address that routes to this host")
    parser.add_argument("--serve-port", type=int, default=80)
    args = parser.parse_args()
    excluded = json.loads(args.exclude)

    bindir = Path(sys.executable).parent
    stestr = str(bindir / "stestr")
    workspace = args.workspace.resolve()
    results = args.results.resolve()
    results.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TEMPEST_CONFIG_DIR=str(workspace / "etc"), TEMPEST_CONFIG="tempest.conf")
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"

    write_stestr_conf(workspace)
    argv = [stestr, "run", "--concurrency", str(args.concurrency)]
    if excluded:
        argv += ["--exclude-regex", "|".join(f"(?:{e['regex']})" for e in excluded)]
    argv.append(args.regex)
    run_id = next_stream(workspace)
    server = None
    if args.serve_for:
        address = route_source(args.serve_for)
        try:
            server = serve_image(
                workspace / "http-image", address, args.serve_port, results / "http-image.log"
            )
        except OSError as exc:
            print(
                f"tempest_run: cannot serve the test image on {address}:{args.serve_port} ({exc}): "
                "free the port, "
                "or set tempest_http_image_port (allowed by the image service's import filtering) or "
                "tempest_http_image",
                file=sys.stderr,
            )
            return 2
    started = time.monotonic()
    try:
        run_rc = run(argv, workspace, env, results / "console.log", args.timeout)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    duration = time.monotonic() - started

    stream = results / "tempest.subunit"
    if next_stream(workspace) <= run_id or run([stestr, "last", "--subunit"], workspace, env, stream) != 0:
        print(
            f"tempest_run: the run recorded nothing (stestr exit {run_rc}): see {results / 'console.log'}",
            file=sys.stderr,
        )
        return 2
    # Text report: stestr's subunit-trace (each test, failures with their details, totals).
    run([stestr, "last"], workspace, env, results / "tempest.txt")
    with stream.open("rb") as data, (results / "junit.xml").open("wb") as out:
        subprocess.run([str(bindir / "subunit2junitxml")], stdin=data, stdout=out, env=env, check=False)
    subprocess.run(
        [str(bindir / "subunit2html"), str(stream), str(results / "tempest.html")],
        stdout=subprocess.DEVNULL,
        env=env,
        check=True,
    )

    summary = summarise(read_stream(stream))
    summary.update(
        excluded=len(excluded),
        excluded_tests=excluded,
        results_dir=str(results),
        report_html=str(results / "tempest.html"),
        report_text=str(results / "tempest.txt"),
        duration_seconds=round(duration),
        stestr_exit=run_rc,
    )
    if run_rc == -1:
        summary["failed_tests"].append(f"(the run was stopped after {args.timeout:.0f} s)")
        summary["failed"] += 1
    (results / "skipped.txt").write_text(
        "".join(f"{s['id']}: {s['reason']}\n" for s in summary["skipped_tests"])
        + "".join(f"(excluded) {e['regex']}: {e['reason']}\n" for e in excluded)
    )
    (results / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    latest = results.parent / "latest"
    if latest.is_symlink():
        latest.unlink()
    if not latest.exists():
        latest.symlink_to(results.name)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
