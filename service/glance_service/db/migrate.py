"""Schema migrations (alembic, shipped inside the package): sync, current revision, check.

``glance-manage`` and ``glance-registry`` (its start-up check) use these; Ansible relies on
``needs_sync`` to report ``changed`` truthfully.
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


def sync(url: str) -> tuple[str | None, str]:
    """Upgrade to head (idempotent). Returns (revision before, revision after)."""
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
        _check_known(before)
        cfg = _config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with engine.connect() as conn:
            after = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    assert after is not None
    return before, after
