"""Alembic environment: the URL or an open connection comes from ``glance_service.db.migrate``.

There is no alembic.ini: ``migrate.py`` builds the configuration in code, so the
migrations ship inside the package and run from ``glance-manage``.
"""

from __future__ import annotations

from alembic import context

from glance_service.db import models
from glance_service.db import session as db_session

config = context.config
target_metadata = models.Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: let alembic rebuild tables when needed.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = db_session.create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run glance-manage db_sync.")
run_migrations_online()
