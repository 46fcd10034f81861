"""Rolling-upgrade schema phases (``glance-manage db expand | migrate | contract | check``),
on SQLite and a private MariaDB.

The shipped revisions are all expand-phase; the phase logic is exercised on a test chain of
real migrations: expand 0001 (table), expand 0002 (new column), contract 0003 (data moved
from the old column to the new one by ``db migrate``, old column dropped), expand 0004 (the
next release's expansion).
"""

from __future__ import annotations

import shutil
import textwrap

import pytest
import sqlalchemy as sa

from glance_service.cmd import manage, registry
from glance_service.db import migrate, session
from tests.unit.db.test_db_migrations import manage as run_manage

# -- the shipped chain -----------------------------------------------------------------------------


def test_every_shipped_revision_declares_its_phase():
    chain = migrate.revisions()
    assert [r.id for r in chain][-1] == migrate.head()
    assert [r.phase for r in chain] == ["expand"] * len(chain)  # the current ones only add


def test_expand_then_contract_reaches_head(fresh_url):
    assert migrate.status(fresh_url) == migrate.EXPAND
    assert migrate.needs_expand(fresh_url)
    with pytest.raises(migrate.PhaseOrderError, match="glance-manage db expand"):
        migrate.contract(fresh_url)
    assert migrate.current(fresh_url) is None  # nothing done
    assert migrate.expand(fresh_url) == (None, migrate.head())
    assert migrate.status(fresh_url) == migrate.CURRENT
    assert migrate.migrate_data(fresh_url) == 0
    assert migrate.contract(fresh_url) == (migrate.head(), migrate.head())
    assert not migrate.needs_sync(fresh_url)


@pytest.fixture
def manage_conf(fresh_url, tmp_path):
    path = tmp_path / "glance-registry.conf"
    path.write_text(f"[database]\nconnection = {fresh_url}\n")
    return path


def test_glance_manage_phases_with_the_shipped_chain(manage_conf):
    check = run_manage(manage_conf, "db", "check")
    assert check.returncode == 3, check.stderr
    assert check.stdout.strip() == (
        "Your database is not up to date. Your first step is to run `glance-manage db expand`."
    )
    for step in ("contract", "migrate"):
        refused = run_manage(manage_conf, "db", step)
        assert refused.returncode == 1, refused.stdout
        assert 'Run database expansion first using "glance-manage db expand"' in refused.stderr
        assert "Traceback" not in refused.stderr
    expand = run_manage(manage_conf, "db", "expand")
    assert expand.returncode == 0, expand.stderr
    head = migrate.head()
    assert expand.stdout.strip() == f"Upgraded database to: {head}, current revision(s): {head}"
    check = run_manage(manage_conf, "db", "check")
    assert (check.returncode, check.stdout.strip()) == (0, "Database is up to date. No upgrades needed.")
    for step in ("expand", "migrate", "contract", "sync"):
        again = run_manage(manage_conf, "db", step)
        assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"schema: already at {head}"  # db sync keeps its own line


# -- a chain with every phase ------------------------------------------------------------------

HEADER = """\
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None
phase = {phase!r}
"""

TEST_CHAIN = {
    "0001_t": (
        None,
        "expand",
        """
        def upgrade():
            op.create_table(
                "phase_t",
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("a", sa.String(20)),
                mysql_engine="InnoDB",
            )
        """,
    ),
    "0002_t": (
        "0001_t",
        "expand",
        """
        def upgrade():
            op.add_column("phase_t", sa.Column("b", sa.String(20), nullable=True))
        """,
    ),
    "0003_t": (
        "0002_t",
        "contract",
        """
        PENDING = "SELECT COUNT(*) FROM phase_t WHERE b IS NULL AND a IS NOT NULL"

        def data_pending(conn):
            return conn.execute(sa.text(PENDING)).scalar() > 0

        def migrate_data(conn):
            moved = conn.execute(sa.text("UPDATE phase_t SET b = a WHERE b IS NULL AND a IS NOT NULL"))
            return moved.rowcount

        def upgrade():
            with op.batch_alter_table("phase_t") as batch:
                batch.drop_column("a")
        """,
    ),
    "0004_t": (
        "0003_t",
        "expand",
        """
        def upgrade():
            op.add_column("phase_t", sa.Column("c", sa.String(20), nullable=True))
        """,
    ),
}


@pytest.fixture
def test_chain(tmp_path, monkeypatch):
    root = tmp_path / "migrations"
    (root / "versions").mkdir(parents=True)
    shutil.copy(f"{migrate.MIGRATIONS_DIR}/env.py", root / "env.py")
    shutil.copy(f"{migrate.MIGRATIONS_DIR}/script.py.mako", root / "script.py.mako")
    for rev, (down, phase, body) in TEST_CHAIN.items():
        text = HEADER.format(rev=rev, down=down, phase=phase) + textwrap.dedent(body)
        (root / "versions" / f"{rev}.py").write_text(text)
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", str(root))
    return root


def _sql(url, statement, **params):
    engine = session.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


def _columns(url):
    engine = session.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns("phase_t")}
    finally:
        engine.dispose()


def test_phases_in_order(test_chain, fresh_url):
    url = fresh_url
    assert migrate.head() == "0004_t"
    assert migrate.status(url) == migrate.EXPAND
    assert migrate.expand(url) == (None, "0002_t")  # stops before the contraction
    assert _columns(url) == {"id", "a", "b"}
    assert migrate.status(url) == migrate.CONTRACT  # no data to move
    # The old code writes rows meanwhile: now the data must move before the contraction.
    _sql(url, "INSERT INTO phase_t (id, a) VALUES (1, 'one'), (2, 'two'), (3, NULL)")
    assert migrate.status(url) == migrate.MIGRATE
    with pytest.raises(migrate.PhaseOrderError, match='glance-manage db migrate"'):
        migrate.contract(url)
    assert migrate.current(url) == "0002_t"
    assert migrate.migrate_data(url) == 2
    assert migrate.migrate_data(url) == 0
    assert migrate.status(url) == migrate.CONTRACT
    assert migrate.contract(url) == ("0002_t", "0003_t")
    assert _columns(url) == {"id", "b"}
    assert _sql(url, "SELECT id, b FROM phase_t ORDER BY id") == [(1, "one"), (2, "two"), (3, None)]
    # The next release's expansion
    assert migrate.status(url) == migrate.EXPAND
    with pytest.raises(migrate.PhaseOrderError):
        migrate.contract(url)
    assert migrate.expand(url) == ("0003_t", "0004_t")
    assert migrate.status(url) == migrate.CURRENT


def test_sync_runs_all_three_phases(test_chain, fresh_url):
    url = fresh_url
    migrate.expand(url)
    _sql(url, "INSERT INTO phase_t (id, a) VALUES (1, 'one')")
    assert migrate.sync(url) == ("0002_t", "0004_t")
    assert _sql(url, "SELECT id, b, c FROM phase_t") == [(1, "one", None)]
    assert migrate.sync(url) == ("0004_t", "0004_t")


def test_glance_manage_check_exit_codes_and_refusals(test_chain, fresh_url, tmp_path, capsys):
    conf = tmp_path / "glance-registry.conf"
    conf.write_text(f"[database]\nconnection = {fresh_url}\n")

    def run(*args):
        code = manage.main(["--config-file", str(conf), "db", *args])
        out = capsys.readouterr()
        return code, out.out.strip(), out.err.strip()

    assert run("check") == (
        3,
        "Your database is not up to date. Your first step is to run `glance-manage db expand`.",
        "",
    )
    code, _, err = run("contract")
    assert code == 1
    assert err == (
        "glance-manage: Database contraction did not run. Database contraction cannot be run "
        'before database expansion. Run database expansion first using "glance-manage db expand"'
    )
    assert run("expand") == (0, "Upgraded database to: 0002_t, current revision(s): 0002_t", "")
    assert run("expand") == (0, "Database expansion is up to date. No expansion needed.", "")
    assert run("check")[:2] == (
        5,
        "Your database is not up to date. Your next step is to run `glance-manage db contract`.",
    )
    _sql(fresh_url, "INSERT INTO phase_t (id, a) VALUES (1, 'one')")
    assert run("check")[:2] == (
        4,
        "Your database is not up to date. Your next step is to run `glance-manage db migrate`.",
    )
    code, _, err = run("contract")
    assert code == 1 and 'Run data migration using "glance-manage db migrate".' in err
    assert run("migrate") == (0, "Migrated 1 rows", "")
    assert run("migrate") == (0, "Database migration is up to date. No migration needed.", "")
    assert run("contract") == (0, "Upgraded database to: 0003_t, current revision(s): 0003_t", "")
    assert run("check")[0] == 3
    assert run("sync")[:2] == (0, "schema: 0003_t -> 0004_t")
    assert run("check") == (0, "Database is up to date. No upgrades needed.", "")
    assert run("contract") == (0, "Database is up to date. No migrations needed.", "")


def test_registry_starts_once_expanded(test_chain, fresh_url):
    """A schema waiting only for its contraction serves the new code (a rolling upgrade)."""
    from oslo_config import cfg

    (test_chain / "versions" / "0004_t.py").unlink()  # this release: 0001..0003
    conf = cfg.ConfigOpts()
    session.register_opts(conf)
    conf([], project="phase-test")
    conf.set_override("connection", fresh_url, group="database")
    problem = registry.check_schema(conf)
    assert problem and "db expand" in problem and "glance-manage db_sync" in problem
    migrate.expand(fresh_url)
    assert migrate.status(fresh_url) == migrate.CONTRACT
    assert registry.check_schema(conf) is None


def test_a_revision_without_phase_is_refused(test_chain, fresh_url):
    path = test_chain / "versions" / "0004_t.py"
    path.write_text(path.read_text().replace("phase = 'expand'\n", ""))
    with pytest.raises(RuntimeError, match="0004_t declares no valid phase"):
        migrate.status(fresh_url)
