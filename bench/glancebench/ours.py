"""The bundled image service (glance-registry + glance-api on gunicorn), started by the service's
own test fixture from the project's config templates."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from glancebench.infra import REPO, ServiceAuth, _fixture


def export_source(ref: str, directory: Path) -> Path:
    """The service's package as committed at ``ref`` (``git archive``, read-only on the repo):
    a directory to put first on ``PYTHONPATH`` so the processes import it instead of the
    editable working tree, which other work may be changing during a run."""
    directory.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", ref, "service/glance_service"],
        check=True,
        capture_output=True,
        timeout=120,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True, timeout=120)
    return directory / "service"


# duplicates: the harness's two services (Ours, upstream.Upstream) are described by the same
# first fields (work directory, database URL, authentication): two targets of one interface.
@dataclass
class Ours:
    workdir: Path
    db_url: str
    auth: ServiceAuth | None
    workers: int = 2
    # As the toolkit renders it with the metadata cache on (roles/glance/defaults:
    # glance_registry_workers): a GET by id makes no registry call, the registry is on the
    # write path only, served by one process without a master (common/solo_server.py).
    registry_workers: int = 0
    source: Path | None = None  # a directory holding glance_service/, else the installed one
    name: str = "ours"
    procs: object = field(default=None, repr=False)
    # glance-api signs the identity it validated; the registry does not validate the token again
    # (registry/identity.py). The toolkit's templates set the same option from a generated secret.
    identity_secret: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)

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
        if self.source:
            # start_glance() passes its environment on to both processes.
            os.environ["PYTHONPATH"] = str(self.source)
        self.procs = _fixture("glance_procs").start_glance(
            self.workdir,
            flavor="keystone" if self.auth else "",
            keystone=keystone,
            database_url=self.db_url,
            workers=self.workers,
            registry_workers=self.registry_workers,
            extra_api=self.settings(),
            extra_registry=self.settings(),
        )

    def settings(self) -> dict:
        """Options appended to both configurations (the templates' ``*_conf_overrides``):
        the identity secret, and the metadata cache on the harness's memcached (the one
        Keystone's token cache uses, as a deployment shares it)."""
        out: dict = {"DEFAULT": {"registry_identity_secret": self.identity_secret}}
        if self.auth:
            out["metadata_cache"] = {"memcached_servers": self.auth.memcached_servers}
        return out

    def process_roots(self) -> dict[str, int]:
        """The gunicorn master of each process (its workers are its children)."""
        if not self.procs:
            return {}
        return {
            name: p.pid
            for name, p in (("api", self.procs.api), ("registry", self.procs.registry))
            if p is not None and p.poll() is None
        }

    def root_pids(self) -> list[int]:
        if not self.procs:
            return []
        return [p.pid for p in (self.procs.api, self.procs.registry) if p is not None and p.poll() is None]

    def stop(self) -> None:
        if self.procs:
            self.procs.stop()
            self.procs = None
