"""Which HTTP server should carry the Image API? The same WSGI app under each candidate.

    .venv/bin/pip install -r bench/requirements-servers.txt
    .venv/bin/python bench/servers.py [--rounds 3] [--size-mib 512] [--seconds 10] [--only a,b]

One app for every candidate: glance-api's own ``app_factory`` with trusted-header identity,
``data_api = database`` on SQLite and the file store, all in one work directory
(``bench/out/servers/<stamp>/``). Each candidate listens on a free loopback port. Rounds
alternate the candidates (A B C ... A B C ...) so background load on the machine falls on all of
them alike. Per candidate and round, against images made over HTTP in that round:

- upload of ``--size-mib`` with ``Transfer-Encoding: chunked`` and with ``Content-Length``
  (curl): MB/s, and the server tree's peak RSS over its idle RSS (does it buffer the body?);
- download of that image with curl to /dev/null: MB/s and the server's CPU seconds for it;
- ``wrk -t2 -c16`` on ``GET /v2/images/{id}``: requests/s, p99, errors;
- first round only, after the timed runs: one more download under ``strace -c`` counting the
  server's ``sendfile`` calls against its ``write``/``send`` calls (strace slows the server,
  so it is never timed).

Medians over the rounds are printed as a Markdown table and written as JSON next to the logs.
Nothing asserts: a candidate that cannot do a workload shows the failure in its cell.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

HEADERS = {"X-Project-Id": "bench-project", "X-User-Id": "bench-user", "X-Roles": "admin,member,reader"}
THREADS = 32
# The candidates: name -> (server, workers). gunicorn as wsgi_server.py configures it.
CANDIDATES = {
    "gunicorn-1w": ("gunicorn", 1),
    "gunicorn-2w": ("gunicorn", 2),
    "waitress": ("waitress", 1),
    "cheroot": ("cheroot", 1),
    "uwsgi": ("uwsgi", 1),
}

# ---------------------------------------------------------------- the served side


def build_app(conf_file: str):
    """glance-api's WSGI app exactly as each gunicorn worker builds it."""
    from glance_service.api import app as app_mod
    from glance_service.common import config

    conf = config.CONF
    app_mod.register_opts(conf)
    config.load("glance-api", ["--config-file", conf_file], 9292, conf)
    return conf, app_mod.app_factory(conf)


_uwsgi_app = None


def uwsgi_application(environ, start_response):
    """uwsgi's entry point (``--wsgi-file``): built on first use, in the worker."""
    global _uwsgi_app
    if _uwsgi_app is None:
        _uwsgi_app = build_app(os.environ["GLANCE_BENCH_CONF"])[1]
    return _uwsgi_app(environ, start_response)


def serve(server: str, conf_file: str, workers: int) -> None:
    if server == "gunicorn":
        from glance_service.api import app as app_mod
        from glance_service.common import wsgi_server as server_mod

        conf, _ = build_app(conf_file)  # loads the options; each worker builds its own app
        server_mod.serve(lambda: app_mod.app_factory(conf), conf, "bench-gunicorn", workers=workers)
    elif server == "waitress":
        import waitress

        conf, app = build_app(conf_file)
        waitress.serve(app, host="127.0.0.1", port=conf.bind_port, threads=THREADS, ident="bench")
    elif server == "cheroot":
        from cheroot import wsgi

        conf, app = build_app(conf_file)
        httpd = wsgi.Server(("127.0.0.1", conf.bind_port), app, numthreads=THREADS)
        # SIGTERM keeps its default action (exit): httpd.stop() from a handler waits on its threads.
        httpd.start()
    else:
        raise SystemExit(f"unknown server {server}")


def uwsgi_argv(port: int, workers: int) -> list[str]:
    # Flags as bench/glancebench/upstream.py serves upstream Glance, with HTTP/1.1 keep-alive.
    return [
        str(Path(sys.executable).with_name("uwsgi")),
        "--http11-socket", f"127.0.0.1:{port}",
        "--wsgi-file", str(Path(__file__).resolve()), "--callable", "uwsgi_application",
        "--pythonpath", str(HERE),
        "--master", "--processes", str(workers), "--threads", str(THREADS), "--enable-threads",
        "--lazy-apps", "--need-app", "--die-on-term", "--buffer-size", "65535",
        "--http-chunked-input", "--chunked-input-limit", str(64 << 20),
        "--disable-logging", "--procname-prefix", "bench-srv-",
    ]  # fmt: skip


# ---------------------------------------------------------------- the measuring side


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


class Candidate:
    def __init__(self, name: str, workdir: Path, data_dir: Path):
        from glance_service.cmd import standalone

        from glancebench.procs import Proc, free_port, wait_http

        self.name = name
        server, workers = CANDIDATES[name]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf_file = workdir / f"{name}.conf"
        # glance-standalone's configuration (the toolkit's store shape), with the bench's threads
        conf_file.write_text(
            standalone.render_config(data_dir, "127.0.0.1", self.port, threads_per_worker=THREADS)
        )
        env = dict(os.environ, GLANCE_BENCH_CONF=str(conf_file))
        if server == "uwsgi":
            argv = uwsgi_argv(self.port, workers)
        else:
            argv = [sys.executable, __file__, "serve", server, str(conf_file), str(workers)]
        self.proc = Proc(name, argv, workdir / f"{name}.log", env=env)
        wait_http(self.url + "/healthcheck", self.proc, timeout=60)

    def pids(self) -> list[int]:
        from glancebench.procs import tree_pids

        return tree_pids([self.proc.pid])

    def stop(self) -> None:
        self.proc.stop()


def _header_args() -> list[str]:
    return [x for k, v in HEADERS.items() for x in ("-H", f"{k}: {v}")]


def _api(method: str, url: str, **kw):
    import requests

    resp = requests.request(method, url, headers=HEADERS | kw.pop("headers", {}), timeout=60, **kw)
    if resp.status_code >= 300:
        raise RuntimeError(f"{method} {url}: {resp.status_code} {resp.text[:300]}")
    return resp


def create_image(c: Candidate, name: str) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare"}
    return _api("POST", c.url + "/v2/images", json=body).json()["id"]


def _curl(args: list[str], stdin=None) -> tuple[int, float, float]:
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total} %{size_download}", *args],
        stdin=stdin, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    code, total, size = out.stdout.split() if out.stdout else ("000", "0", "0")
    return int(code), float(total), float(size)


def upload(c: Candidate, data: Path, chunked: bool) -> dict:
    """PUT the file; MB/s and the server tree's peak RSS over its idle RSS."""
    from glancebench.procs import RssSampler

    image_id = create_image(c, "bench-upload")
    url = f"{c.url}/v2/images/{image_id}/file"
    args = ["-X", "PUT", "-H", "Content-Type: application/octet-stream"]
    args += _header_args()
    with RssSampler([c.proc.pid], interval=0.02) as rss:
        if chunked:
            with open(data, "rb") as f:
                code, secs, _ = _curl([*args, "-H", "Transfer-Encoding: chunked", "-T", "-", url], stdin=f)
        else:
            code, secs, _ = _curl([*args, "-T", str(data), url])
    size = data.stat().st_size
    result = {"code": code, "mbps": size / secs / 1e6 if code == 204 else None}
    image = _api("GET", f"{c.url}/v2/images/{image_id}").json()
    if code == 204 and (image["status"] != "active" or image["size"] != size):
        result["mbps"] = None
        result["code"] = f"{code}, image {image['status']} size {image['size']}"
    result["rss_peak_mib"] = rss.peak / 2**20
    result["rss_growth_mib"] = (rss.peak - rss.baseline) / 2**20
    result["image_id"] = image_id
    return result


def download(c: Candidate, image_id: str, size: int) -> dict:
    pids = c.pids()
    cpu0 = _cpu_seconds(pids)
    code, secs, got = _curl([*_header_args(),
                             f"{c.url}/v2/images/{image_id}/file"])  # fmt: skip
    cpu = _cpu_seconds(pids) - cpu0
    ok = code == 200 and int(got) == size
    return {"code": code, "mbps": size / secs / 1e6 if ok else None, "cpu_s": cpu, "wall_s": secs}


def syscall_probe(c: Candidate, image_id: str, workdir: Path) -> dict:
    """One untimed download under ``strace -c``: how the server wrote the body."""
    out = workdir / f"{c.name}.strace"
    argv = ["strace", "-f", "-c", "-o", str(out), "-e", "trace=sendfile,write,writev,sendto,sendmsg"]
    for pid in c.pids():
        argv += ["-p", str(pid)]
    strace = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # strace attaches to every thread first
    _curl([*_header_args(), f"{c.url}/v2/images/{image_id}/file"])
    strace.send_signal(signal.SIGINT)
    strace.wait(30)
    calls = {}
    for line in out.read_text().splitlines():
        parts = line.split()
        if parts and parts[-1] in ("sendfile", "write", "writev", "sendto", "sendmsg"):
            calls[parts[-1]] = int(parts[3])
    return calls


def get_load(c: Candidate, seconds: int) -> dict:
    from glancebench.measures import parse_wrk

    image_id = create_image(c, "bench-get")
    argv = ["wrk", "-t2", "-c16", "--latency", "--timeout", "10s"]
    argv += _header_args()
    url = f"{c.url}/v2/images/{image_id}"
    subprocess.run([*argv, "-d2s", url], capture_output=True, check=True, timeout=120)  # warm-up
    out = subprocess.run(
        [*argv, f"-d{seconds}s", url], capture_output=True, text=True, check=True, timeout=300
    )
    result = parse_wrk(out.stdout)
    return {"rps": result["rps"], "p99_ms": result["p99_ms"], "errors": result["errors"]}


def one_round(name: str, workdir: Path, data_dir: Path, data: Path, seconds: int, probe: bool) -> dict:
    c = Candidate(name, workdir, data_dir)
    try:
        r: dict = {}
        up_c = upload(c, data, chunked=True)
        up_l = upload(c, data, chunked=False)
        r.update({f"up_chunked_{k}": v for k, v in up_c.items()})
        r.update({f"up_length_{k}": v for k, v in up_l.items()})
        source = up_l["image_id"] if up_l["mbps"] else up_c["image_id"]
        r.update({f"down_{k}": v for k, v in download(c, source, data.stat().st_size).items()})
        r.update({f"get_{k}": v for k, v in get_load(c, seconds).items()})
        if probe:
            r["syscalls"] = syscall_probe(c, source, workdir)
        for image_id in (up_c["image_id"], up_l["image_id"]):
            _api("DELETE", f"{c.url}/v2/images/{image_id}")
        return r
    finally:
        c.stop()


def _median(rounds: list[dict], key: str):
    values = [r.get(key) for r in rounds]
    numbers = [v for v in values if isinstance(v, (int, float)) and v is not None]
    if len(numbers) < len(values):
        bad = [r.get(key.replace("mbps", "code")) for r in rounds]
        return f"failed ({bad})"
    return statistics.median(numbers)


ROWS = [
    ("GET image, wrk -c16", "req/s", "get_rps"),
    ("GET image, p99", "ms", "get_p99_ms"),
    ("GET image, errors", "", "get_errors"),
    ("download, curl", "MB/s", "down_mbps"),
    ("download, server CPU", "s", "down_cpu_s"),
    ("upload chunked", "MB/s", "up_chunked_mbps"),
    ("upload chunked, RSS growth", "MiB", "up_chunked_rss_growth_mib"),
    ("upload Content-Length", "MB/s", "up_length_mbps"),
    ("upload Content-Length, RSS growth", "MiB", "up_length_rss_growth_mib"),
    ("server tree peak RSS", "MiB", "up_length_rss_peak_mib"),
]


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


def table(results: dict[str, list[dict]]) -> str:
    names = list(results)
    lines = ["| measure | unit | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for label, unit, key in ROWS:
        cells = " | ".join(_fmt(_median(results[n], key)) for n in names)
        lines.append(f"| {label} | {unit} | {cells} |")
    sendfile = []
    for n in names:
        calls = results[n][0].get("syscalls", {})
        sendfile.append(f"{calls.get('sendfile', 0)} / {sum(v for k, v in calls.items() if k != 'sendfile')}")
    lines.append("| download: sendfile / write+send calls | | " + " | ".join(sendfile) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        serve(argv[1], argv[2], int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--only", default=",".join(CANDIDATES))
    args = parser.parse_args(argv)
    names = args.only.split(",")

    from glance_service.db import migrate

    workdir = HERE / "out" / "servers" / time.strftime("%Y%m%d-%H%M%S")
    data_dir = workdir / "data"
    (data_dir / "images").mkdir(parents=True)
    migrate.sync(f"sqlite:///{data_dir}/glance.sqlite")
    data = workdir / "blob.bin"
    with open(data, "wb") as f:
        for _ in range(args.size_mib):
            f.write(os.urandom(1 << 20))

    results: dict[str, list[dict]] = {n: [] for n in names}
    for rnd in range(args.rounds):
        for name in names:  # alternated: A B C, A B C, ...
            t0 = time.monotonic()
            try:
                r = one_round(name, workdir, data_dir, data, args.seconds, probe=rnd == 0)
            except Exception as exc:  # a candidate that breaks is a result, not a crash
                r = {"error": str(exc)[:500]}
            results[name].append(r)
            print(f"round {rnd + 1} {name} ({time.monotonic() - t0:.0f}s): {json.dumps(r)}", flush=True)
    data.unlink()
    doc = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": f"{platform.node()} {os.cpu_count()} CPU, load {os.getloadavg()}",
        "command": " ".join([Path(sys.executable).name, "bench/servers.py", *argv]),
        "results": results,
    }
    (workdir / "servers.json").write_text(json.dumps(doc, indent=1))
    print(table(results))
    print(f"JSON and logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
