#!/usr/bin/env python3
"""Acknowledged writes to a MariaDB (Galera) cluster, and their check.

A writer inserts numbered rows, one autocommit INSERT each, through one or more endpoints
(host:port: a Galera node, or HAProxy's VIP) and records in a file the id of every insert the
server acknowledged (the COMMIT returned). Inserts that failed are recorded apart: they may or
may not have been applied. The checker then asserts that every acknowledged id is in the table,
on every endpoint it is given (each Galera node directly).

    galera_writes.py setup  --endpoint H:P --user U --password-file F [--database D]
    galera_writes.py write  --endpoint H:P [--endpoint H2:P ...] --acked FILE
                            [--first N] [--count N | --seconds S] [--interval S]
    galera_writes.py check  --endpoint H:P [--endpoint ...] --acked FILE

As a module: setup(), Writer (a thread with stop()), check().
On a failure the writer moves to the next endpoint (as HAProxy would) and retries a NEW id: an
id is never inserted twice, so a failed one stays unknown.
"""

import argparse
import json
import os
import sys
import threading
import time

import pymysql

TABLE = "galera_writes"


def _parse_endpoint(text):
    host, _, port = text.rpartition(":")
    return (host, int(port)) if host else (text, 3306)


def connect(endpoint, user, password, database=None, timeout=5):
    host, port = _parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
    # duplicates: a keyword call of the same shape as db/tasks.py's INSERT; nothing is shared.
    return pymysql.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        database=database,
        connect_timeout=timeout,
        read_timeout=timeout * 2,
        write_timeout=timeout * 2,
        autocommit=True,
    )


def setup(endpoint, user, password, database):
    """Creates the table (idempotent) through the given endpoint."""
    conn = connect(endpoint, user, password, database)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                " id BIGINT PRIMARY KEY,"
                " endpoint VARCHAR(64) NOT NULL,"
                " written_at DOUBLE NOT NULL,"
                " payload VARCHAR(255) NOT NULL) ENGINE=InnoDB"
            )
    finally:
        conn.close()


class Writer(threading.Thread):
    """Inserts rows first, first+1, ... until stop(), count rows or seconds elapsed."""

    def __init__(
        self,
        endpoints,
        user,
        password,
        database,
        acked_path,
        first=1,
        count=None,
        seconds=None,
        interval=0.02,
    ):
        super().__init__(daemon=True)
        self.endpoints = list(endpoints)
        self.user, self.password, self.database = user, password, database
        self.acked_path = acked_path
        self.next_id = first
        self.count, self.seconds, self.interval = count, seconds, interval
        self.acked, self.failed, self.errors = [], [], []
        self._stop_event = threading.Event()
        self._current = 0

    def stop(self):
        self._stop_event.set()

    def _done(self, started, attempted):
        if self._stop_event.is_set():
            return True
        if self.count is not None and attempted >= self.count:
            return True
        return self.seconds is not None and time.monotonic() - started >= self.seconds

    def run(self):
        started, attempted, conn = time.monotonic(), 0, None
        with open(self.acked_path, "a", encoding="utf-8") as acked_file:
            while not self._done(started, attempted):
                row_id = self.next_id
                self.next_id += 1
                attempted += 1
                endpoint = self.endpoints[self._current]
                try:
                    if conn is None:
                        conn = connect(endpoint, self.user, self.password, self.database)
                    with conn.cursor() as cur:
                        cur.execute(
                            f"INSERT INTO {TABLE} (id, endpoint, written_at, payload)"
                            " VALUES (%s, %s, %s, %s)",
                            (row_id, endpoint, time.time(), f"row {row_id}"),
                        )
                    # Acknowledged: the server returned OK for the autocommitted INSERT.
                    self.acked.append(row_id)
                    acked_file.write(json.dumps({"id": row_id, "acked": True}) + "\n")
                except pymysql.MySQLError as exc:
                    self.failed.append(row_id)
                    self.errors.append(f"{time.time():.3f} {endpoint} id={row_id}: {exc}")
                    acked_file.write(
                        json.dumps({"id": row_id, "acked": False, "endpoint": endpoint, "error": str(exc)})
                        + "\n"
                    )
                    if conn is not None:
                        try:
                            conn.close()
                        except Exception:  # noqa: BLE001 - the connection is broken anyway
                            pass
                    conn = None
                    self._current = (self._current + 1) % len(self.endpoints)
                    time.sleep(0.2)
                acked_file.flush()
                os.fsync(acked_file.fileno())
                if self.interval:
                    time.sleep(self.interval)
        if conn is not None:
            conn.close()


def read_acked(path):
    """(acknowledged ids, failed ids) recorded in the file by Writer."""
    acked, failed = set(), set()
    with open(path, encoding="utf-8") as acked_file:
        for line in acked_file:
            if line.strip():
                record = json.loads(line)
                (acked if record["acked"] else failed).add(record["id"])
    return acked, failed


def check(endpoints, user, password, database, acked_path):
    """{endpoint: {"rows": n, "missing": [ids]}} for each endpoint; missing must be empty."""
    acked, _failed = read_acked(acked_path)
    result = {}
    for endpoint in endpoints:
        conn = connect(endpoint, user, password, database)
        try:
            with conn.cursor() as cur:
                # A causal read: this node has applied everything committed before it.
                cur.execute("SET SESSION wsrep_sync_wait = 1")
                cur.execute(f"SELECT id FROM {TABLE}")
                present = {row[0] for row in cur.fetchall()}
        finally:
            conn.close()
        result[endpoint] = {"rows": len(present), "missing": sorted(acked - present)}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["setup", "write", "check"])
    parser.add_argument("--endpoint", action="append", required=True, help="host:port")
    parser.add_argument("--user", default=os.environ.get("GALERA_WRITES_USER", "galera_test"))
    parser.add_argument("--password-file", default=os.environ.get("GALERA_WRITES_PASSWORD_FILE"))
    parser.add_argument("--database", default="galera_test")
    parser.add_argument("--acked", help="file of acknowledged ids (JSON lines)")
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--count", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--interval", type=float, default=0.02)
    args = parser.parse_args(argv)
    with open(args.password_file, encoding="utf-8") as password_file:
        password = password_file.read().strip()

    if args.command == "setup":
        setup(args.endpoint[0], args.user, password, args.database)
        return 0
    if args.command == "write":
        writer = Writer(
            args.endpoint,
            args.user,
            password,
            args.database,
            args.acked,
            first=args.first,
            count=args.count,
            seconds=args.seconds,
            interval=args.interval,
        )
        writer.start()
        writer.join()
        print(f"galera_writes: acked={len(writer.acked)} failed={len(writer.failed)}")
        for error in writer.errors[:20]:
            print(f"galera_writes: error {error}")
        return 0
    result = check(args.endpoint, args.user, password, args.database, args.acked)
    acked, failed = read_acked(args.acked)
    ok = all(not r["missing"] for r in result.values())
    for endpoint, r in result.items():
        print(
            f"galera_writes: {endpoint} rows={r['rows']} acked={len(acked)} "
            f"failed={len(failed)} missing={len(r['missing'])} {r['missing'][:20]}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
