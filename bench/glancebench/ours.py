"""The bundled image service (glance-registry + glance-api on gunicorn), started by the service's
own test fixture from the project's config templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from glancebench.infra import ServiceAuth, _fixture


@dataclass
class Ours:
    workdir: Path
    db_url: str
    auth: ServiceAuth | None
    workers: int = 2
    name: str = "ours"
    procs: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.procs.api_url

    @property
    def store_dir(self) -> Path:
        return self.workdir / "images"

    def prepare(self) -> None:
        """Nothing to do ahead: ``start_glance`` renders the configs and runs ``db_sync``."""

    def start(self) -> None:
        keystone = None
        if self.auth:
            keystone = {
                "public_url": self.auth.auth_url,
                "internal_url": self.auth.auth_url,
                "password": self.auth.password,
                "memcached_servers": [self.auth.memcached_servers],
            }
        self.procs = _fixture("glance_procs").start_glance(
            self.workdir,
            flavor="keystone" if self.auth else "",
            keystone=keystone,
            database_url=self.db_url,
            workers=self.workers,
        )

    def root_pids(self) -> list[int]:
        if not self.procs:
            return []
        return [p.pid for p in (self.procs.api, self.procs.registry) if p is not None and p.poll() is None]

    def stop(self) -> None:
        if self.procs:
            self.procs.stop()
            self.procs = None
