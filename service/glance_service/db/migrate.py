"""Schema migrations (alembic, shipped inside the package): sync, current revision, check,
and the rolling-upgrade phases expand / migrate / contract.

``glance-manage`` and ``glance-registry`` (its start-up check) use these; Ansible relies on
``db check`` to report ``changed`` truthfully.
"""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from glance_service.db import session as db_session

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")


class UnknownRevision(Exception):
    """The database carries a revision this code does not know (a newer release migrated it)."""


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    return cfg


def head() -> str:
    """The newest revision this code ships."""
    heads = ScriptDirectory.from_config(_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"The migrations have {len(heads)} heads; expected exactly one: {heads}")
    return heads[0]


def _engine(url: str) -> Engine:
    return db_session.create_engine(url)


def current(url: str) -> str | None:
    """The database's revision, or None for an empty (never synced) database."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _check_known(rev: str | None) -> None:
    if rev is None:
        return
    script = ScriptDirectory.from_config(_config())
    try:
        found = script.get_revision(rev)
    except Exception as exc:  # alembic raises several types for unknown ids
        found = None
        cause = exc
    else:
        cause = None
    if found is None:
        raise UnknownRevision(
            f"The database is at schema revision {rev!r}, which this version of glance-service does "
            "not know: it was migrated by a newer release. Upgrade glance-service on this host."
        ) from cause


def needs_sync(url: str) -> bool:
    """True when ``sync`` would change the schema. ``UnknownRevision`` if the DB is ahead."""
    rev = current(url)
    _check_known(rev)
    return rev != head()


# -- rolling upgrades: expand, migrate, contract (as upstream's glance-manage) ----------------
#
# Each revision module declares ``phase``: ``"expand"`` (adds what the new code needs; the
# old code keeps working on the result: new tables, new nullable columns, new indexes) or
# ``"contract"`` (removes or tightens what only the old code used; run once no old code is
# left). A contract revision may also carry a data migration, run by ``db migrate`` after the
# expansion and before it: ``data_pending(connection) -> bool`` and
# ``migrate_data(connection) -> int`` (rows moved; called until nothing is pending).
# The chain stays linear: a release puts its expand revisions before its contract ones.
# Pending revisions (from the database's revision to head) are worked through in runs:
# ``expand`` applies the leading run of expand revisions, ``contract`` the leading run of
# contract revisions, and only when no expand revision comes before them and no data
# migration of theirs is pending. ``sync`` = expand, migrate, contract until head.

EXPAND = "expand"
CONTRACT = "contract"
PHASES = (EXPAND, CONTRACT)

# What ``status`` answers (upstream's db check: its exit codes 0, 3, 4, 5).
CURRENT = "current"
MIGRATE = "migrate"


class PhaseOrderError(Exception):
    """A phase asked for before the one that must come first (contract before expand, or
    before the data migration)."""


class Revision:
    """One pending revision: its id, phase, and (contract only) data migration."""

    def __init__(self, script_revision):
        self.id: str = script_revision.revision
        module = script_revision.module
        phase = getattr(module, "phase", None)
        if phase not in PHASES:
            raise RuntimeError(f"Migration {self.id} declares no valid phase ({phase!r}): expand or contract")
        self.phase: str = phase
        self._pending = getattr(module, "data_pending", None)
        self._migrate = getattr(module, "migrate_data", None)
        if (self._pending is None) != (self._migrate is None):
            raise RuntimeError(f"Migration {self.id}: data_pending and migrate_data go together")
        if self._pending is not None and phase != CONTRACT:
            raise RuntimeError(f"Migration {self.id}: only a contract revision carries a data migration")

    def data_pending(self, conn) -> bool:
        return self._pending is not None and bool(self._pending(conn))

    def migrate_data(self, conn) -> int:
        return int(self._migrate(conn)) if self._migrate is not None else 0


def revisions() -> list[Revision]:
    """Every revision this code ships, oldest first."""
    script = ScriptDirectory.from_config(_config())
    return [Revision(r) for r in reversed(list(script.walk_revisions("base", "heads")))]


def pending(url: str) -> list[Revision]:
    """The revisions the database lacks, oldest first. ``UnknownRevision`` if it is ahead."""
    rev = current(url)
    _check_known(rev)
    chain = revisions()
    ids = [r.id for r in chain]
    return chain[ids.index(rev) + 1 :] if rev is not None else chain


def _leading(revs: list[Revision], phase: str) -> list[Revision]:
    run = []
    for rev in revs:
        if rev.phase != phase:
            break
        run.append(rev)
    return run


def _data_pending(url: str, run: list[Revision]) -> bool:
    if not any(r._pending for r in run):
        return False
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return any(r.data_pending(conn) for r in run)
    finally:
        engine.dispose()


def status(url: str) -> str:
    """What comes next: ``current``, ``expand``, ``migrate`` or ``contract``."""
    todo = pending(url)
    if not todo:
        return CURRENT
    if todo[0].phase == EXPAND:
        return EXPAND
    return MIGRATE if _data_pending(url, _leading(todo, CONTRACT)) else CONTRACT


def needs_expand(url: str) -> bool:
    """True while expand revisions this code needs are missing (this code cannot run yet).
    A database waiting only for its contraction serves this code."""
    return any(r.phase == EXPAND for r in pending(url))


def _upgrade(url: str, target: str) -> tuple[str | None, str]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
        cfg = _config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)
        with engine.connect() as conn:
            after = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    assert after is not None
    return before, after


def expand(url: str) -> tuple[str | None, str | None]:
    """Apply the leading run of pending expand revisions. (before, after): equal when there
    was nothing to expand."""
    todo = pending(url)
    run = _leading(todo, EXPAND)
    rev = current(url)
    if not run:
        return rev, rev
    return _upgrade(url, run[-1].id)


def migrate_data(url: str) -> int:
    """Run the pending data migrations of the next contraction; rows moved.
    ``PhaseOrderError`` while an expansion comes first."""
    todo = pending(url)
    if todo and todo[0].phase == EXPAND:
        raise PhaseOrderError(
            "Data migration did not run. Data migration cannot be run before database "
            'expansion. Run database expansion first using "glance-manage db expand"'
        )
    moved = 0
    engine = _engine(url)
    try:
        for rev in _leading(todo, CONTRACT):
            while True:
                with engine.begin() as conn:
                    if not rev.data_pending(conn):
                        break
                    count = rev.migrate_data(conn)
                moved += count
                if count <= 0:
                    raise RuntimeError(f"Migration {rev.id}: data still pending but nothing was migrated")
    finally:
        engine.dispose()
    return moved


def contract(url: str) -> tuple[str | None, str | None]:
    """Apply the leading run of pending contract revisions. ``PhaseOrderError`` while an
    expansion or a data migration comes first."""
    todo = pending(url)
    rev = current(url)
    if not todo:
        return rev, rev
    if todo[0].phase == EXPAND:
        raise PhaseOrderError(
            "Database contraction did not run. Database contraction cannot be run before "
            'database expansion. Run database expansion first using "glance-manage db expand"'
        )
    run = _leading(todo, CONTRACT)
    if _data_pending(url, run):
        raise PhaseOrderError(
            "Database contraction did not run. Database contraction cannot be run before data "
            'migration is complete. Run data migration using "glance-manage db migrate".'
        )
    return _upgrade(url, run[-1].id)


def sync(url: str) -> tuple[str | None, str]:
    """Upgrade to head (idempotent): expand, migrate, contract, as often as the pending
    revisions need. Returns (revision before, revision after)."""
    before = current(url)
    _check_known(before)
    while pending(url):
        expand(url)
        migrate_data(url)
        contract(url)
    after = current(url)
    assert after is not None
    return before, after
