"""``glance-standalone``: the whole service in one process, for development.

    glance-standalone --data-dir ./glance-data [--port 9292] [--host 127.0.0.1]

Embedded defaults: SQLite (``DATA_DIR/glance.sqlite``) and the file store
(``DATA_DIR/images``); the API reads the database directly (``data_api = database``), so no
registry runs; identity comes from trusted headers (no Keystone), which the API announces
with a loud warning. Never expose it beyond a development host.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from glance_service.db import migrate

CONFIG_TEMPLATE = """\
# Written by glance-standalone: development only (no authentication).
[DEFAULT]
bind_host = {host}
bind_port = {port}
workers = 1
{extra}data_api = database
registry_host = 127.0.0.1
# the toolkit's shape: one file backend (and http for web locations), staging beside it
enabled_backends = file:file, http:http

[database]
connection = sqlite:///{data_dir}/glance.sqlite

[paste_deploy]
flavor =

[glance_store]
default_backend = file

[file]
filesystem_store_datadir = {data_dir}/images

[os_glance_staging_store]
filesystem_store_datadir = {data_dir}/staging

[os_glance_tasks_store]
filesystem_store_datadir = {data_dir}/tasks
"""


def render_config(data_dir: Path, host: str, port: int, **defaults: object) -> str:
    """glance-api.conf for one process on SQLite and the file store under ``data_dir``;
    ``defaults``: more ``[DEFAULT]`` options (the bench's ``threads_per_worker``)."""
    extra = "".join(f"{name} = {value}\n" for name, value in defaults.items())
    return CONFIG_TEMPLATE.format(host=host, port=port, data_dir=data_dir, extra=extra)


def write_config(data_dir: Path, host: str, port: int) -> Path:
    (data_dir / "images").mkdir(parents=True, exist_ok=True)
    path = data_dir / "glance-api.conf"
    path.write_text(render_config(data_dir, host, port))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="glance-standalone", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="./glance-data", help="Where the database and images live.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: loopback).")
    parser.add_argument("--port", type=int, default=9292)
    args = parser.parse_args(argv)

    data_dir = Path(args.data_dir).resolve()
    config_file = write_config(data_dir, args.host, args.port)
    before, after = migrate.sync(f"sqlite:///{data_dir}/glance.sqlite")
    print(f"glance-standalone: schema {before or 'base'} -> {after}; data in {data_dir}", file=sys.stderr)
    print(
        f"glance-standalone: Image API at http://{args.host}:{args.port}/v2 "
        "(no authentication: send X-Project-Id and X-Roles headers)",
        file=sys.stderr,
    )
    api = Path(sys.executable).with_name("glance-api")
    os.execv(str(api), [str(api), "--config-file", str(config_file)])
