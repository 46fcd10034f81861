"""Migrations and glance-manage's db commands, on SQLite and MariaDB."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from glance_service.db import migrate, session
from glance_service.db.models import Base

GLANCE_MANAGE = os.path.join(os.path.dirname(sys.executable), "glance-manage")


def test_sync_is_idempotent(fresh_url):
    head = migrate.head()
    assert migrate.current(fresh_url) is None
    assert migrate.needs_sync(fresh_url) is True
    assert migrate.sync(fresh_url) == (None, head)
    assert migrate.sync(fresh_url) == (head, head)
    assert migrate.current(fresh_url) == head
    assert migrate.needs_sync(fresh_url) is False


def test_models_match_migrations(synced_url):
    """The models describe exactly the schema the migrations build (no drift)."""
    engine = session.create_engine(synced_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
    finally:
        engine.dispose()
    assert diff == []


def test_mysql_tables_are_utf8mb4(synced_url, backend):
    if backend != "mariadb":
        pytest.skip("MySQL/MariaDB only")
    engine = session.create_engine(synced_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT TABLE_NAME, TABLE_COLLATION, ENGINE FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'image%'"
                )
            ).all()
    finally:
        engine.dispose()
    assert len(rows) == 5
    assert all(r.TABLE_COLLATION.startswith("utf8mb4") and r.ENGINE == "InnoDB" for r in rows)


def test_unknown_revision_is_reported(fresh_url):
    migrate.sync(fresh_url)
    engine = session.create_engine(fresh_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(migrate.UnknownRevision):
        migrate.needs_sync(fresh_url)
    with pytest.raises(migrate.UnknownRevision):
        migrate.sync(fresh_url)


def manage(config_file, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [GLANCE_MANAGE, "--config-file", str(config_file), *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def manage_conf(fresh_url, tmp_path):
    path = tmp_path / "glance-registry.conf"
    path.write_text(f"[database]\nconnection = {fresh_url}\n")
    return path


def test_glance_manage_db_commands(manage_conf):
    head = migrate.head()
    check = manage(manage_conf, "db", "check")
    assert check.returncode == 3, check.stderr
    assert "glance-manage db expand" in check.stdout  # upstream's message
    version = manage(manage_conf, "db", "version")
    assert (version.returncode, version.stdout.strip()) == (0, "base")

    first = manage(manage_conf, "db_sync")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"schema: base -> {head}"
    second = manage(manage_conf, "db", "sync")
    assert (second.returncode, second.stdout.strip()) == (0, f"schema: already at {head}")

    assert manage(manage_conf, "db", "check").returncode == 0
    for spelling in (("db", "version"), ("db_version",)):
        version = manage(manage_conf, *spelling)
        assert (version.returncode, version.stdout.strip()) == (0, head)


def test_glance_manage_error_is_not_a_traceback(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[database]\nconnection = sqlite:////nonexistent-dir/glance.sqlite\n")
    result = manage(conf, "db", "check")
    assert result.returncode not in (0, 3)
    assert "glance-manage" in result.stderr and "Traceback" not in result.stderr


def test_glance_manage_unknown_command(manage_conf):
    result = manage(manage_conf, "db", "explode")
    assert result.returncode not in (0, 3)
    assert "invalid choice" in result.stderr
