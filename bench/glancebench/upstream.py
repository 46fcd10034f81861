"""Upstream Glance (PyPI ``glance``) in its own virtualenv, served by uwsgi.

Glance 33 runs only under a WSGI server. uwsgi needs ``--chunked-input-limit`` of at least
16 MiB (glanceclient's chunked uploads go through ``uwsgi.chunked_read()``) and a
``Connection: close`` header (uwsgi's http-socket mode cannot be trusted with keep-alive),
as DevStack does; random bytes must be uploaded as ``raw`` (Glance inspects qcow2);
``db_load_metadefs`` must run after ``db_sync``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from glancebench.infra import ServiceAuth
from glancebench.procs import Proc, free_port, tree_pids, wait_http

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("GLANCE_UPSTREAM_VENV", REPO / ".venv-glance-upstream"))


def venv_ready() -> bool:
    return (VENV / "bin" / "uwsgi").exists() and (VENV / "bin" / "glance-manage").exists()


def _api_conf(db_url: str, store_dir: Path, auth: ServiceAuth | None, port: int, workdir: Path) -> str:
    lines = [
        "[DEFAULT]",
        f"bind_port = {port}",
        "bind_host = 127.0.0.1",
        f"image_size_cap = {1 << 40}",
        "show_image_direct_url = false",
        # No image import staging area is used by the benchmark; keep it inside the run.
        f"node_staging_uri = file://{workdir / 'staging'}",
        "enabled_import_methods = []",
        f"lock_path = {workdir / 'locks'}",
        "",
        "[database]",
        f"connection = {db_url}",
        "",
        "[paste_deploy]",
        f"flavor = {'keystone' if auth else ''}",
        "",
        "[glance_store]",
        "stores = file",
        "default_store = file",
        f"filesystem_store_datadir = {store_dir}",
        "",
        "[oslo_concurrency]",
        f"lock_path = {workdir / 'locks'}",
        "",
        "[wsgi]",
        "task_pool_threads = 4",
    ]
    if auth:
        lines += [
            "",
            "[keystone_authtoken]",
            *[f"{k} = {v}" for k, v in auth.authtoken_options().items()],
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Upstream:
    """One upstream Glance: config dir, database schema, store dir and the uwsgi process."""

    workdir: Path
    db_url: str
    auth: ServiceAuth | None
    processes: int = 2
    threads: int = 8
    name: str = "upstream"
    proc: Proc | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store_dir(self) -> Path:
        return self.workdir / "images"

    def _env(self) -> dict:
        env = dict(os.environ)
        env["OS_GLANCE_CONFIG_DIR"] = str(self.workdir / "etc")
        env["PATH"] = f"{VENV / 'bin'}:{env['PATH']}"
        env.pop("PYTHONPATH", None)
        return env

    def prepare(self) -> None:
        """Write the configuration and bring the database schema up (db_sync, metadefs)."""
        etc = self.workdir / "etc"
        for d in (
            etc,
            self.store_dir,
            self.workdir / "staging",
            self.workdir / "locks",
        ):
            d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (etc / "glance-api.conf").write_text(
            _api_conf(self.db_url, self.store_dir, self.auth, self.port, self.workdir)
        )
        shutil.copy(
            VENV / "etc" / "glance" / "glance-api-paste.ini",
            etc / "glance-api-paste.ini",
        )
        manage = [
            str(VENV / "bin" / "glance-manage"),
            "--config-file",
            str(etc / "glance-api.conf"),
        ]
        log = self.workdir / "glance-manage.log"
        with open(log, "ab") as out:
            for argv in (
                [*manage, "db_sync"],
                [
                    *manage,
                    "db_load_metadefs",
                    str(VENV / "etc" / "glance" / "metadefs"),
                ],
            ):
                done = subprocess.run(
                    argv,
                    check=False,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    timeout=600,
                )
                if done.returncode != 0:
                    raise RuntimeError(f"{' '.join(argv[-2:])} failed; see {log}")

    def start(self) -> None:
        argv = [
            str(VENV / "bin" / "uwsgi"),
            "--http-socket", f"127.0.0.1:{self.port}",
            "--module", "glance.wsgi.api:application",
            "--master",
            "--processes", str(self.processes),
            "--threads", str(self.threads),
            "--enable-threads",
            "--lazy-apps",
            "--need-app",
            "--die-on-term",
            "--thunder-lock",
            "--buffer-size", "65535",
            "--http-raw-body",
            "--http-chunked-input",
            "--http-auto-chunked",
            "--chunked-input-limit", str(64 << 20),
            "--add-header", "Connection: close",
            "--worker-reload-mercy", "10",
            "--disable-logging",
            "--procname-prefix", "bench-upstream-",
        ]  # fmt: skip
        self.proc = Proc("upstream-glance(uwsgi)", argv, self.workdir / "uwsgi.log", env=self._env())
        wait_http(f"{self.url}/versions", self.proc, timeout=120)

    def pids(self) -> list[int]:
        return tree_pids([self.proc.pid]) if self.proc else []

    def root_pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def process_roots(self) -> dict[str, int]:
        """The uwsgi master (its workers are its children)."""
        return {"uwsgi": self.proc.pid} if self.proc else {}

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
            self.proc = None
