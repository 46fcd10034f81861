"""The MariaDB driver: mysqlclient (MySQLdb) for the service, as the toolkit renders the URL;
PyMySQL still works for a URL that names it. What the service relies on from the driver is
checked against a private MariaDB: utf8mb4, the error codes of the deadlock retry, a database
outage answered 503 by the registry, reconnection after the server dropped the connections."""

from __future__ import annotations

import socket
import threading
import time

import MySQLdb  # pinned (service/requirements.txt): missing is an error, not a skip
import pytest
import sqlalchemy as sa

from glance_service.context import RequestContext
from glance_service.db import database_api, migrate, session
from glance_service.db.database_api import DatabaseAPI
from glance_service.registry.server import RegistryApp
from tests.fixtures.mariadb import mariadb  # noqa: F401  (session fixture used below)
from tests.fixtures.registry_rpc import rpc


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("mysql://glance:pw@127.0.0.1/glance", "mysqldb"),
        ("mysql+mysqldb://glance:pw@127.0.0.1/glance?charset=utf8mb4", "mysqldb"),
        ("mariadb://glance:pw@127.0.0.1/glance", "mysqldb"),
        # an operator's URL naming PyMySQL keeps it (Keystone's driver, still installed)
        ("mysql+pymysql://glance:pw@127.0.0.1/glance", "pymysql"),
    ],
)
def test_the_driver_for_a_mysql_url(url, driver):
    engine = session.create_engine(url)
    try:
        assert engine.dialect.driver == driver
        assert engine.dialect.loaded_dbapi.__name__ == {"mysqldb": "MySQLdb", "pymysql": "pymysql"}[driver]
        assert engine.url.query["charset"] == "utf8mb4"
    finally:
        engine.dispose()


def test_the_service_database_in_tests_is_served_by_mysqlclient(mariadb):  # noqa: F811
    url = mariadb.create_database("glance_driver", "glance", "glance-pw")
    assert url.startswith("mysql+mysqldb://")
    migrate.sync(url)
    api = DatabaseAPI(url=url)
    try:
        with api.db.engine.connect() as conn:
            assert isinstance(conn.connection.dbapi_connection, MySQLdb.connections.Connection)
            charset = conn.exec_driver_sql("SELECT @@character_set_client, @@character_set_results").one()
            assert tuple(charset) == ("utf8mb4", "utf8mb4")
        ctx = RequestContext.admin()
        # 4-byte UTF-8 survives the round trip (utf8mb4, as with PyMySQL)
        image = api.image_create(ctx, {"name": "snake \U0001f40d", "properties": {"k": "\U0001f600"}})
        again = api.image_get(ctx, image["id"])
        assert again["name"] == "snake \U0001f40d"
        assert again["properties"] == {"k": "\U0001f600"}
        assert [i["id"] for i in api.image_get_all(ctx)] == [image["id"]]
    finally:
        api.db.dispose()


def test_both_drivers_read_the_same_records(mariadb):  # noqa: F811
    """A database written through one driver reads the same through the other (a deployment
    switching from mysql+pymysql to mysql+mysqldb keeps its records as they were)."""
    name = "glance_two_drivers"
    mariadb.create_database(name, "glance", "glance-pw")
    via_pymysql = DatabaseAPI(url=mariadb.url(name, "glance", "glance-pw", driver="pymysql"))
    via_mysqldb = DatabaseAPI(url=mariadb.url(name, "glance", "glance-pw", driver="mysqldb"))
    migrate.sync(via_pymysql.db.url)
    ctx = RequestContext.admin()
    try:
        created = via_pymysql.image_create(
            ctx, {"name": "n\u00e9", "size": 2**40, "properties": {"p": "v" * 300}, "tags": ["t"]}
        )
        via_pymysql.image_update(ctx, created["id"], {"min_disk": 3, "protected": True})
        assert via_mysqldb.image_get(ctx, created["id"]) == via_pymysql.image_get(ctx, created["id"])
        assert via_mysqldb.image_get_all(ctx) == via_pymysql.image_get_all(ctx)
    finally:
        via_pymysql.db.dispose()
        via_mysqldb.db.dispose()


def _rpc(app: RegistryApp, command: str, **kwargs) -> tuple[str, dict]:
    return rpc(app, command, kwargs)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_database_outage_is_503_with_mysqlclient():
    """Nothing listens at the database's address (the server is down): the registry answers
    503 with mysqlclient's error, as it did with PyMySQL's, not 500."""
    api = DatabaseAPI(url=f"mysql+mysqldb://glance:pw@127.0.0.1:{_closed_port()}/glance")
    try:
        status, body = _rpc(RegistryApp(api), "image_get_all")
        assert status.startswith("503"), (status, body)
        assert body["error"]["type"] == "ServiceUnavailable"
        assert "database" in body["error"]["message"]
        with pytest.raises(Exception) as caught:
            api.image_get_all(RequestContext.admin())
        assert isinstance(caught.value.orig, MySQLdb.OperationalError)  # the driver's, mapped to 503
    finally:
        api.db.dispose()


def test_a_silent_database_host_fails_within_the_connect_timeout(monkeypatch):
    """A host that accepts TCP but never answers: mysqlclient gives up after the connect
    timeout (PyMySQL's 10 s by default, here 1 s), so the request gets its 503 instead of
    waiting for the kernel."""
    monkeypatch.setattr(session, "MYSQL_CONNECT_TIMEOUT", 1)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    api = DatabaseAPI(url=f"mysql+mysqldb://glance:pw@127.0.0.1:{silent.getsockname()[1]}/glance")
    try:
        started = time.monotonic()
        status, _ = _rpc(RegistryApp(api), "image_get_all")
        assert status.startswith("503")
        assert time.monotonic() - started < 8
    finally:
        api.db.dispose()
        silent.close()


def test_connections_the_server_dropped_are_replaced(mariadb):  # noqa: F811
    """The server killed every connection of the pool (a restart, a Galera node leaving):
    the next call is answered (pre-ping replaces them), not a 5xx."""
    url = mariadb.create_database("glance_dropped", "glance", "glance-pw")
    migrate.sync(url)
    api = DatabaseAPI(url=url)
    app = RegistryApp(api)
    try:
        assert _rpc(app, "image_get_all")[0].startswith("200")
        _kill_connections(mariadb, "glance_dropped")
        status, body = _rpc(app, "image_get_all")
        assert status.startswith("200"), (status, body)
    finally:
        api.db.dispose()


def _kill_connections(mariadb, database: str) -> None:  # noqa: F811
    admin = mariadb.admin_connect()
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (database,))
            ids = [row[0] for row in cur.fetchall()]
            assert ids
            for conn_id in ids:
                cur.execute(f"KILL CONNECTION {int(conn_id)}")
    finally:
        admin.close()


def test_a_connection_used_within_a_second_is_not_pinged(mariadb, monkeypatch):  # noqa: F811
    """The pool pings a connection only when it sat idle longer than PING_AFTER_IDLE: a ping
    per checkout was one more round trip per call. One idle longer is pinged."""
    url = mariadb.create_database("glance_ping", "glance", "glance-pw")
    migrate.sync(url)
    api = DatabaseAPI(url=url)
    pings = []
    try:
        real = api.db.engine.dialect.do_ping
        monkeypatch.setattr(api.db.engine.dialect, "do_ping", lambda c: pings.append(c) or real(c))
        ctx = RequestContext.admin()
        image = api.image_create(ctx, {"name": "a"})
        api.image_update(ctx, image["id"], {"status": "saving"}, from_state="queued")
        api.image_get(ctx, image["id"])
        assert pings == []
        monkeypatch.setattr(session, "PING_AFTER_IDLE", 0.0)
        api.image_get(ctx, image["id"])
        assert len(pings) == 1
    finally:
        api.db.dispose()


@pytest.mark.parametrize("command", ["image_get_all", "image_create", "image_member_find"])
def test_a_call_right_after_the_server_dropped_its_connection_runs_once(mariadb, command):  # noqa: F811
    """The server killed the pool's connections less than a second after their last use (no
    ping then): the call fails on its first statement, before any COMMIT, and runs again on a
    new connection: answered, and a write made once."""
    url = mariadb.create_database("glance_dropped_recent", "glance", "glance-pw")
    migrate.sync(url)
    api = DatabaseAPI(url=url)
    ctx = RequestContext.admin()
    try:
        image = api.image_create(ctx, {"name": "before"})
        _kill_connections(mariadb, "glance_dropped_recent")
        if command == "image_get_all":
            assert [i["id"] for i in api.image_get_all(ctx)] == [image["id"]]
        elif command == "image_create":
            api.image_create(ctx, {"name": "after"})
            assert sorted(i["name"] for i in api.image_get_all(ctx)) == ["after", "before"]
        else:
            assert api.image_member_find(ctx, image["id"]) == []
    finally:
        with api.db.writer() as s:
            s.execute(sa.text("DELETE FROM images"))
        api.db.dispose()


def test_a_lost_connection_is_marked_only_before_the_commit(mariadb, monkeypatch):  # noqa: F811
    """Only a lost connection met by a statement is safe to run again; one lost at the COMMIT
    may have committed, and is not marked."""
    url = mariadb.create_database("glance_commit_lost", "glance", "glance-pw")
    db = session.Database(url=url)
    try:
        with db.reading() as conn:
            conn.exec_driver_sql("SELECT 1")
        _kill_connections(mariadb, "glance_commit_lost")
        with pytest.raises(sa.exc.DBAPIError) as caught, db.write_connection() as conn:
            conn.exec_driver_sql("SELECT 1")
        assert caught.value.connection_invalidated and session.not_committed(caught.value)

        def lost(_conn):
            raise MySQLdb.OperationalError(2013, "Lost connection to server during query")

        monkeypatch.setattr(db.engine.dialect, "do_commit", lost)
        with pytest.raises(sa.exc.DBAPIError) as caught, db.write_connection() as conn:
            conn.exec_driver_sql("SELECT 1")
        assert caught.value.connection_invalidated and not session.not_committed(caught.value)
    finally:
        db.dispose()


def test_a_deadlock_with_mysqlclient_is_retried(mariadb):  # noqa: F811
    """A real InnoDB deadlock (what a Galera certification failure also reports: 1213) raised
    through mysqlclient is recognised by the write retry and the call succeeds on its second
    attempt."""
    url = mariadb.create_database("glance_deadlock", "glance", "glance-pw")
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY, v INT)")
        c.exec_driver_sql("CREATE TABLE IF NOT EXISTS heavy (id INT PRIMARY KEY)")
        c.exec_driver_sql("DELETE FROM t")
        c.exec_driver_sql("DELETE FROM heavy")
        c.exec_driver_sql("INSERT INTO t VALUES (1, 0), (2, 0)")
    other_holds_1 = threading.Event()
    victim_holds_2 = threading.Event()
    errors: list[BaseException] = []

    def other():
        # Holds row 1, then wants row 2; it wrote more rows, so InnoDB picks the victim below.
        try:
            with engine.begin() as c:
                c.exec_driver_sql("INSERT INTO heavy VALUES " + ",".join(f"({i})" for i in range(50)))
                c.exec_driver_sql("SELECT v FROM t WHERE id = 1 FOR UPDATE")
                other_holds_1.set()
                victim_holds_2.wait(10)
                c.exec_driver_sql("SELECT v FROM t WHERE id = 2 FOR UPDATE")
        except BaseException as exc:  # asserted in the main thread
            errors.append(exc)

    codes: list[int | None] = []

    @database_api._retry_on_deadlock
    def victim():
        try:
            with engine.begin() as c:
                c.exec_driver_sql("SELECT v FROM t WHERE id = 2 FOR UPDATE")
                if not codes:  # the first attempt makes the deadlock
                    victim_holds_2.set()
                    time.sleep(0.5)  # the other transaction is now waiting for row 2
                c.exec_driver_sql("SELECT v FROM t WHERE id = 1 FOR UPDATE")
                c.exec_driver_sql("UPDATE t SET v = v + 1 WHERE id IN (1, 2)")
        except sa.exc.DBAPIError as exc:
            codes.append(exc.orig.args[0])
            raise
        codes.append(None)
        return "done"

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert other_holds_1.wait(10)
        assert victim() == "done"
    finally:
        thread.join(30)
        engine.dispose()
    assert errors == []
    assert codes == [1213, None]
