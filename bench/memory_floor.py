"""The memory floor of the service's processes: what one API and one registry process hold
before serving a request, with no gunicorn master, worker or connection.

    .venv/bin/python bench/run.py --db sqlite --serve 60 --keep --out bench/out/floor
    .venv/bin/python bench/memory_floor.py bench/out/floor/work/*/sqlite/ours

Each process kind is built in a fresh interpreter (``MALLOC_ARENA_MAX=2`` as the units set it)
from the configuration files the harness wrote: the API's WSGI application as a gunicorn worker
builds it (``app_factory``), the registry's (``build_app``, the database engine made, no
connection yet). Prints RSS per kind and summed; the sum is a lower bound of the service's
``peak RSS during upload`` in ``make bench`` (which also counts masters, extra workers,
threads' stacks, pools and the upload's buffers). Issue 17's bound (<= 0.5x upstream's RSS)
is judged against it in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

# Run in the child: build one kind's application, print "<bare MiB> <built MiB>".
CHILD = r"""
import gc, sys

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

bare = rss()
kind, conf_file = sys.argv[1], sys.argv[2]
from glance_service.common import config
if kind == "glance-api":
    from glance_service.api import options, wiring
    conf = config.CONF
    wiring.register_opts(conf)
    options.register_opts(conf)
    config.load(kind, ["--config-file", conf_file], 9292, conf)
    from glance_service.api import app as app_mod
    app = app_mod.app_factory(conf)
else:
    conf = config.load(kind, ["--config-file", conf_file], 9191)
    from glance_service.db import session as db_session
    db_session.register_opts(conf)
    config.size_database_pool(conf)
    from glance_service.registry.server import build_app
    app = build_app(conf)
gc.collect()
print(f"{bare:.1f} {rss():.1f}")
"""


def measure(kind: str, conf_file: Path) -> tuple[float, float]:
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(conf_file)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[-2]), float(out[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ours", type=Path, help="ours' config directory (glance-*.conf)")
    args = parser.parse_args()
    total = 0.0
    for kind in ("glance-api", "glance-registry"):
        bare, built = measure(kind, args.ours / f"{kind}.conf")
        total += built
        print(f"{kind:16} bare interpreter {bare:6.1f} MiB, application built {built:6.1f} MiB")
    print(f"{'sum':16} {total:6.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
