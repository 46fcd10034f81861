"""Database engine and sessions: ``[database]`` options (Glance's names) and one engine per process.

The engine is built lazily on first use and rebuilt if the process id changed, so a gunicorn
worker never uses connections inherited from its parent.

SQLite (the embedded default) gets WAL, a busy timeout and foreign keys. Its Python driver
starts transactions lazily, which turns a read-then-write transaction into an immediate
``database is locked`` error under concurrency (the busy timeout does not apply to lock
upgrades), so write transactions begin with ``BEGIN IMMEDIATE`` and wait their turn.
MySQL/MariaDB get pre-ping, connection recycling and ``utf8mb4``. The toolkit's driver is
mysqlclient (``mysql+mysqldb://``, a C extension on libmariadb: a 1000-image list spent most of
the registry's CPU in PyMySQL's row parsing); ``mysql+pymysql://`` still works (PyMySQL stays
installed). Both raise the same error classes with the server's code first (``exc.orig.args[0]``:
1213 deadlock, 2003 refused...), which the deadlock retry and the registry's 503 rely on.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from glance_service.common.registrar import registrar

DEFAULT_CONNECTION = "sqlite:////var/lib/glance/glance.sqlite"

database_opts = [
    cfg.StrOpt(
        "connection",
        default=DEFAULT_CONNECTION,
        secret=True,
        help="SQLAlchemy URL of the image database, e.g. "
        "mysql+mysqldb://glance:PASSWORD@db.example.org/glance (production; mysql+pymysql:// "
        "also works) or "
        "sqlite:////var/lib/glance/glance.sqlite (embedded default, one host only).",
    ),
    # oslo.db's declarations (upstream Glance reads these through oslo.db); the values go to
    # SQLAlchemy's QueuePool unchanged, as oslo.db passes them.
    cfg.IntOpt(
        "max_pool_size",
        default=5,
        help="Connections kept open per process (MySQL/MariaDB); 0: no limit. Unset, glance-api "
        "and glance-registry use their thread count (threads_per_worker, at least 5).",
    ),
    cfg.IntOpt(
        "max_overflow",
        default=50,
        help="Connections that may be opened beyond max_pool_size under load (MySQL/MariaDB); -1: no limit.",
    ),
    cfg.IntOpt(
        "pool_timeout",
        help="Seconds to wait for a free connection from the pool before failing. "
        "Unset: SQLAlchemy's default (30).",
    ),
    cfg.IntOpt(
        "connection_recycle_time",
        default=3600,
        help="Seconds after which a pooled connection is replaced; keep it below the server's "
        "wait_timeout (-1: never).",
    ),
    cfg.IntOpt(
        "sqlite_busy_timeout",
        default=30000,
        min=0,
        help="Milliseconds an SQLite writer waits for the database lock before failing.",
    ),
]

_WRITE_OPTION = "glance_write"
# Seconds a new MySQL/MariaDB connection may take (PyMySQL's default, given to mysqlclient too).
MYSQL_CONNECT_TIMEOUT = 10


register_opts = registrar(("database", database_opts))


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [("database", database_opts)]


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str | URL,
    *,
    max_pool_size: int = 5,
    max_overflow: int = 50,
    pool_timeout: int | None = None,
    recycle: int = 3600,
    busy_timeout_ms: int = 30000,
) -> Engine:
    """An engine configured for the backend in ``url``."""
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_ms)
    if url.get_backend_name() in ("mysql", "mariadb"):
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        pool = {"pool_timeout": pool_timeout} if pool_timeout is not None else {}
        connect_args = {}
        if url.get_driver_name() == "mysqldb" and "connect_timeout" not in url.query:
            # PyMySQL gives up connecting after 10 s; libmariadb waits for the kernel (minutes
            # for a host that is gone): the same bound, so an outage is a prompt 503.
            connect_args["connect_timeout"] = MYSQL_CONNECT_TIMEOUT
        engine = sa.create_engine(
            url,
            connect_args=connect_args,
            pool_recycle=recycle,
            pool_size=max_pool_size,
            max_overflow=max_overflow,
            **pool,
        )
        _ping_when_idle(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_recycle=recycle)


# Seconds a pooled MySQL/MariaDB connection may have been idle and still be handed out unpinged.
PING_AFTER_IDLE = 1.0
_IDLE_SINCE = "glance_idle_since"


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pre-ping, for connections idle more than ``PING_AFTER_IDLE`` seconds only.

    A ping on every checkout was one more round trip per call (8% of the registry's and 7% of
    the server's CPU per create + upload on MariaDB); a connection used less than a second ago
    is alive as far as a ping could tell. One the server dropped meanwhile fails its first
    statement, before any COMMIT: ``Database`` marks that error (``not_committed``) and the data
    API runs the call again on a new connection (db/database_api.py), as pre-ping would have."""

    @sa.event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn, record):
        record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn, record):
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy):
        since = record.info.get(_IDLE_SINCE)
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_conn, None):
                # The pool drops this connection and checks out another (a new one if need be).
                raise sa.exc.DisconnectionError(str(exc)) from exc
            raise


def not_committed(exc: BaseException) -> bool:
    """``exc`` is a lost connection met before the transaction's COMMIT was sent: the server
    rolled the transaction back, so the call may run again (on a new connection)."""
    return bool(getattr(exc, _NOT_COMMITTED, False))


_NOT_COMMITTED = "glance_not_committed"


@contextmanager
def _mark_lost_connection() -> Iterator[None]:
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            setattr(exc, _NOT_COMMITTED, True)
        raise


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    database = url.database or ""
    if database and database != ":memory:":
        directory = os.path.dirname(os.path.abspath(database))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"The directory of the SQLite database does not exist: {directory}")
    engine = sa.create_engine(
        url, connect_args={"timeout": busy_timeout_ms / 1000.0, "check_same_thread": False}
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take transaction control away from the driver; the "begin" hook below issues BEGIN.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if database and database != ":memory:":
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL is durable against application crashes; fsync at checkpoints.
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get(_WRITE_OPTION)
        # On the driver's connection: through exec_driver_sql the BEGIN went the whole way of a
        # statement (events, cursor and result set-up), 5% of an SQLite write call's CPU.
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """One engine per process, built on first use from ``[database]`` options (or a URL)."""

    def __init__(self, conf: cfg.ConfigOpts | None = None, url: str | None = None):
        if conf is not None:
            register_opts(conf)
        self._conf = conf
        self._url = url
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._engine: Engine | None = None
        self._read: sessionmaker | None = None
        self._write: sessionmaker | None = None

    @property
    def url(self) -> str:
        if self._url is not None:
            return self._url
        assert self._conf is not None
        return self._conf.database.connection

    @property
    def engine(self) -> Engine:
        self._ensure()
        assert self._engine is not None
        return self._engine

    def _ensure(self) -> None:
        if self._engine is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                return
            if self._engine is not None:
                # Inherited from the parent across a fork: drop without closing its sockets.
                self._engine.dispose(close=False)
            kwargs = {}
            if self._conf is not None:
                db = self._conf.database
                kwargs = {
                    "max_pool_size": db.max_pool_size,
                    "max_overflow": db.max_overflow,
                    "pool_timeout": db.pool_timeout,
                    "recycle": db.connection_recycle_time,
                    "busy_timeout_ms": db.sqlite_busy_timeout,
                }
            engine = create_engine(self.url, **kwargs)
            self._read = sessionmaker(bind=engine, expire_on_commit=False)
            self._write = sessionmaker(
                bind=engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False
            )
            self._engine = engine
            self._pid = os.getpid()

    def reader(self) -> AbstractContextManager[Session]:
        """A session for reads (a consistent snapshot for its duration)."""
        return self._transaction("_read")

    def writer(self) -> AbstractContextManager[Session]:
        """A session for a write transaction, committed on success, rolled back on error."""
        return self._transaction("_write")

    @contextmanager
    def write_connection(self) -> Iterator[sa.Connection]:
        """A write transaction on a plain connection (SQLAlchemy Core, no ORM session),
        committed on success, rolled back on error; on SQLite it begins IMMEDIATE like a
        ``writer()``. For the hot writes, where the session's set-up and commit bookkeeping
        cost more CPU than the statements."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin(), _mark_lost_connection():
                yield conn

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A plain connection for reads; its transaction (one snapshot) is rolled back on
        close."""
        with self.engine.connect() as conn, _mark_lost_connection():
            yield conn

    @contextmanager
    def _transaction(self, maker: str) -> Iterator[Session]:
        self._ensure()
        sessions = getattr(self, maker)
        assert sessions is not None
        with sessions() as session, session.begin(), _mark_lost_connection():
            yield session

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = None
            self._pid = None
