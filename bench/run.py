"""Benchmark: the bundled image service side by side with upstream Glance.

    .venv/bin/python bench/run.py            # the full run (make bench)
    .venv/bin/python bench/run.py --smoke    # tiny sizes, one round (make bench-smoke)

Both services run behind one real Keystone (memcached token cache), each with its own
database of the same kind and its own file store on the same disk; every measurement runs on
both, alternating ours/upstream per round. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from glancebench import machine, measures, ours, report, spy, upstream
from glancebench.infra import Infra
from glancebench.ours import Ours

BENCH = Path(__file__).resolve().parent
MiB = 1 << 20

FULL = {"big": 1024 * MiB, "parallel": 256 * MiB, "small": 1000, "list_reps": 20, "get_seconds": 20,
        "rounds": 3, "dd_count": 256, "hash_bytes": 1024 * MiB, "storm": 32,
        "deep": (1000, 100_000)}  # fmt: skip
SMOKE = {"big": 8 * MiB, "parallel": 1 * MiB, "small": 20, "list_reps": 3, "get_seconds": 1,
         "rounds": 1, "dd_count": 8, "hash_bytes": 32 * MiB, "storm": 4, "deep": (1000, 2000)}  # fmt: skip


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def blob(directory: Path, size: int, index: int) -> measures.Blob:
    """A file of random bytes (kept between runs in bench/out/data) and its sha512."""
    path = directory / f"random-{size}-{index}.bin"
    digest_file = path.with_suffix(".sha512")
    if path.exists() and digest_file.exists() and path.stat().st_size == size:
        return measures.Blob(path, size, digest_file.read_text().strip())
    directory.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha512()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MiB))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    digest_file.write_text(h.hexdigest())
    return measures.Blob(path, size, h.hexdigest())


def machine_info() -> dict:
    mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.machine(),
    )  # fmt: skip
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory": mem.split(":", 1)[1].strip(),
        "python": platform.python_version(),
    }


def _targets(kind: str, infra: Infra, workdir: Path, source: Path | None = None) -> list:
    """Ours and upstream, each with its own database of ``kind`` and its own store dir."""
    if kind == "mariadb":
        ours_db = infra.database_url("glance_ours", driver=infra.ours_driver)
        up_db = infra.database_url("glance_upstream", driver="pymysql")
    else:
        ours_db = f"sqlite:///{workdir / 'ours' / 'glance.sqlite'}"
        up_db = f"sqlite:///{workdir / 'upstream' / 'glance.sqlite'}"
    auth = infra.service_auth()
    return [
        Ours(workdir / "ours", ours_db, auth, source=source),
        upstream.Upstream(workdir / "upstream", up_db, auth),
    ]


def _start(target) -> str | None:
    """Prepares and starts one service; the error text if it failed (the other still runs)."""
    try:
        target.workdir.mkdir(parents=True, exist_ok=True)
        target.prepare()
        target.start()
    except Exception as exc:  # noqa: BLE001 - reported, and the run fails
        target.stop()
        return str(exc)
    return None


def run_db(
    kind: str,
    infra: Infra,
    workdir: Path,
    plan: measures.Plan,
    rounds: int,
    token: str,
    source: Path | None,
    checkpoint=lambda outcome: None,
) -> dict:
    """Both services on databases of ``kind``; ``rounds`` rounds, ours then upstream each round."""
    # --ours-ref: the exported source must reach Ours (session 1 measured the working tree).
    targets = _targets(kind, infra, workdir, source)
    plan = dataclasses.replace(
        plan, delete_workers=4 if kind == "mariadb" else 1, shared=infra.process_roots()
    )
    results: dict = {t.name: [] for t in targets}
    errors: list[dict] = []
    started = []
    try:
        log(f"{kind}: starting both services")
        with ThreadPoolExecutor(len(targets)) as pool:
            failures = list(pool.map(_start, targets))
        for t, failure in zip(targets, failures, strict=True):
            if failure:
                errors.append({"target": t.name, "round": None, "error": f"start: {failure}"})
                log(f"{kind}: {t.name} did not start: {failure}")
            else:
                started.append(t)
                log(f"{kind}: {t.name} at {t.url}")
        for r in range(rounds):
            for t in started:
                log(f"{kind}: round {r + 1}/{rounds}: {t.name}")
                try:
                    results[t.name].append(measures.run_suite(t, token, plan, log=log))
                except Exception as exc:  # noqa: BLE001 - recorded, reported, and the run fails
                    traceback.print_exc()
                    errors.append({"target": t.name, "round": r + 1, "error": str(exc)})
                checkpoint({"rounds": results, "errors": errors, "partial": True})
    finally:
        for t in started:
            t.stop()
    return {"rounds": results, "errors": errors}


def serve(infra: Infra, kind: str, workdir: Path, seconds: int, env_file: Path, source: Path | None) -> int:
    """Both services up for ``seconds``, their URLs and a token in ``env_file``; then stopped."""
    targets = []
    try:
        infra.start()
        targets = _targets(kind, infra, workdir, source)
        for t in targets:
            if failure := _start(t):
                print(f"bench: {t.name} did not start: {failure}", file=sys.stderr)
                return 1
        lines = [f"OS_TOKEN={infra.token()}"] + [
            f"{t.name.upper()}_URL={t.url}\n{t.name.upper()}_PIDS='{' '.join(map(str, t.root_pids()))}'"
            for t in targets
        ]
        env_file.write_text("\n".join(lines) + "\n")
        log(f"serving for {seconds}s; URLs, PIDs and a token in {env_file}")
        time.sleep(seconds)
    finally:
        for t in targets:
            t.stop()
        infra.stop()
    return 0


def _describe_source(ref: str | None) -> str:
    """Which code of the service is measured: a commit, or the working tree on top of one."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(BENCH.parent), *argv], capture_output=True, text=True)
        return done.stdout.strip()

    if ref:
        return f"commit {git('rev-parse', ref)[:12]} ({ref})"
    dirty = git("status", "--porcelain", "--", "service/glance_service")
    return f"working tree on {git('rev-parse', 'HEAD')[:12]}" + (" with uncommitted changes" if dirty else "")


def _interrupt(signum, _frame) -> None:
    # SIGTERM unwinds like Ctrl-C, so that every started process is stopped by the finally blocks.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, one round: proves the harness runs",
    )
    parser.add_argument("--rounds", type=int, help="rounds per service (default 3, smoke 1)")
    parser.add_argument(
        "--db",
        default="mariadb,sqlite",
        help="database kinds, in order (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=BENCH / "out",
        help="results directory (git-ignored)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the work directory (configs, logs, stores)",
    )
    parser.add_argument(
        "--serve",
        type=int,
        metavar="SECONDS",
        help="start Keystone and both services on the first --db kind, write their URLs and a token to "
        "OUT/serve.env, keep them up for SECONDS (for profiling by hand), then stop them",
    )
    parser.add_argument(
        "--ours-ref",
        metavar="GIT_REF",
        help="benchmark the service as committed at GIT_REF (e.g. HEAD) instead of the working tree",
    )
    parser.add_argument(
        "--ours-driver",
        choices=("mysqldb", "pymysql"),
        default="mysqldb",
        help="ours' MariaDB driver: mysqldb (mysqlclient, as the toolkit deploys it) or pymysql "
        "(for an A/B run); upstream always uses PyMySQL (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        default=",".join(measures.GROUPS),
        help="measurement groups to run, for targeted A/B runs: big (1 GiB uploads, downloads, RSS, "
        "boot storm), small (small creations, list, concurrent GETs, CPU profile), parallel (8 "
        "concurrent uploads), deep (listing with 1000 and 100,000 records written into the "
        "database) (default: %(default)s)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each service with py-spy during its 16-client GET run and print the top "
        "functions (perturbs the figures of that run: for diagnosis)",
    )
    parser.add_argument("--small", type=int, help="number of small images (default 1000, smoke 20)")
    parser.add_argument("--get-seconds", type=int, help="seconds of each concurrent-GET run (default 20)")
    parser.add_argument(
        "--deep",
        type=int,
        help="records in the database for the large deep listing (default 100000, smoke 2000)",
    )
    parser.add_argument(
        "--storm", type=int, help="simultaneous downloads in the boot storm (default 32, smoke 4)"
    )
    args = parser.parse_args(argv)
    groups = frozenset(g.strip() for g in args.only.split(",") if g.strip())
    if bad := groups - set(measures.GROUPS):
        parser.error(f"unknown group(s) {sorted(bad)}: use {', '.join(measures.GROUPS)}")

    sizes = dict(SMOKE if args.smoke else FULL)
    rounds = args.rounds or sizes["rounds"]
    if args.small:
        sizes["small"] = args.small
    if args.get_seconds:
        sizes["get_seconds"] = args.get_seconds
    if args.deep:
        sizes["deep"] = (min(sizes["deep"][0], args.deep), args.deep)
    if args.storm:
        sizes["storm"] = args.storm
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if bad := set(kinds) - {"mariadb", "sqlite"}:
        parser.error(f"unknown database kind(s) {sorted(bad)}: use mariadb and/or sqlite")
    if not upstream.venv_ready():
        print(f"bench: no upstream Glance virtualenv at {upstream.VENV}: run bench/setup-upstream.sh "
              "(make bench does)", file=sys.stderr)  # fmt: skip
        return 2

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    mode = "smoke" if args.smoke else "full"
    workdir = args.out / "work" / f"{stamp}-{mode}"
    workdir.mkdir(parents=True)
    started = time.monotonic()
    source = ours.export_source(args.ours_ref, workdir / "ours-src") if args.ours_ref else None
    ours_source = _describe_source(args.ours_ref)
    log(f"ours: glance_service from {ours_source}")
    document = {
        "date": stamp,
        "mode": mode,
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "machine": machine_info(),
        "sizes": sizes | {"rounds": rounds},
        "groups": sorted(groups),
        "ours_source": ours_source,
        "ours_driver": args.ours_driver,
        "databases": {},
    }
    if args.serve:
        infra = Infra(workdir / "infra", mariadb=kinds[0] == "mariadb", ours_driver=args.ours_driver)
        try:
            return serve(infra, kinds[0], workdir / kinds[0], args.serve, args.out / "serve.env", source)
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    log(f"bench ({mode}): data files")
    data_dir = args.out / "data"
    big = blob(data_dir, sizes["big"], 0)
    plan = measures.Plan(
        big=big,
        parallel=[blob(data_dir, sizes["parallel"], i) for i in range(8)],
        small_count=sizes["small"],
        list_reps=sizes["list_reps"],
        get_seconds=sizes["get_seconds"],
        get_clients=(16, 64),
        groups=groups,
        storm_clients=sizes["storm"],
        deep_counts=tuple(sizes["deep"]),
        profile_dir=workdir / "py-spy" if args.profile else None,
    )
    if args.profile and not spy.available():
        log("--profile: no py-spy (pip install -r bench/requirements-bench.txt): not profiling")
    log("machine limits")
    limits = machine.measure(workdir, big.path, sizes["dd_count"], sizes["hash_bytes"], sizes["storm"])
    document["machine_limits"] = limits
    document["round_trip"] = [machine.round_trip()]
    infra = Infra(workdir / "infra", mariadb="mariadb" in kinds, ours_driver=args.ours_driver)
    out_json = args.out / f"bench-{stamp}-{mode}.json"
    failed = False
    try:
        log("memcached, " + ("MariaDB, " if "mariadb" in kinds else "") + "Keystone")
        infra.start()
        token = infra.token()
        for kind in kinds:

            def checkpoint(partial: dict, kind: str = kind) -> None:
                # A long run that is stopped keeps what it measured so far.
                document["databases"][kind] = partial
                report.write_json(out_json, document)

            outcome = run_db(kind, infra, workdir / kind, plan, rounds, token, source, checkpoint)
            outcome["summary"] = report.summarise(outcome["rounds"], limits)
            outcome["cpu"] = report.cpu_summary(outcome["rounds"])
            document["databases"][kind] = outcome
            failed |= bool(outcome["errors"])
        # The ceilings again at the end (services stopped), the best of both kept: a machine busy
        # with other work at one moment would otherwise make the services look closer to its
        # limits than they are.
        log("machine limits again")
        again = machine.measure(workdir, big.path, sizes["dd_count"], sizes["hash_bytes"], sizes["storm"])
        document["machine_limits_runs"] = [dict(limits), again]
        document["round_trip"].append(machine.round_trip())
        for key, value in again.items():
            limits[key] = max(limits[key], value)
        for outcome in document["databases"].values():
            outcome["summary"] = report.summarise(outcome["rounds"], limits)
    finally:
        infra.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    document["seconds"] = time.monotonic() - started

    print()
    print(report.limits_table(limits))
    print()
    print(report.round_trip_line(document["round_trip"]))
    for kind, outcome in document["databases"].items():
        print()
        title = f"{kind} ({rounds} round(s), {mode}, {','.join(sorted(groups))})"
        names = report.labels(sizes)
        print(report.table(outcome["summary"], limits, title, groups != set(measures.GROUPS), names))
        if outcome.get("cpu"):
            print()
            print(report.cpu_table(outcome["cpu"], f"{kind}: CPU per request by process (median of rounds)"))
        for name, rs in outcome["rounds"].items():
            for r, figures in enumerate(rs, 1):
                for proc, top in figures.get("spy_get", {}).items():
                    print()
                    print(report.spy_table(top, f"{kind}: {name} {proc}, py-spy during GET, round {r}"))
        for e in outcome["errors"]:
            print(f"ERROR {kind} {e['target']} round {e['round']}: {e['error']}")
    report.write_json(out_json, document)
    (args.out / f"latest-{mode}.json").unlink(missing_ok=True)
    (args.out / f"latest-{mode}.json").symlink_to(out_json.name)
    png = args.out / f"bench-{stamp}-{mode}.png"
    plotted = report.plot(
        png, {k: o["summary"] for k, o in document["databases"].items()}, report.labels(sizes)
    )
    print(f"\nJSON: {out_json}" + (f"\nplot: {png}" if plotted else " (no plot: matplotlib not installed)"))
    print(
        f"bench ({mode}) took {document['seconds']:.0f} s" + (": FAILED, see errors above" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
