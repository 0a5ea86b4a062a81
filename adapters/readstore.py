"""ReadStore implementations: SQLite (embedded default) and PostgreSQL (psycopg 3 pool)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from adapters.pgcheck import quiet_or_checked
from adapters.pglock import AdvisoryLock
from adapters.settings import Database
from domain.errors import UnavailableError
from projections.store import ReadStore, Row


class _SqliteCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(sql.replace("%s", "?"), tuple(params))

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql.replace("%s", "?"), [tuple(p) for p in params])

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        marks = ", ".join("?" * len(columns))
        self._cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)  # noqa: S608

    def fetchall(self) -> list[Row]:
        return [dict(r) for r in self._cursor.fetchall()]

    def fetchone(self) -> Row | None:
        row = self._cursor.fetchone()
        return dict(row) if row is not None else None


class SqliteReadStore:
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        self._lock_files: dict[str, int] = {}
        # One shared connection for an in-memory database (each connection would be a new db).
        self._shared: sqlite3.Connection | None = self._connect() if path == ":memory:" else None
        self._shared_lock = threading.RLock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        if self._path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._shared is not None:
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, relaxed: bool = False) -> Iterator[_SqliteCursor]:
        with self._shared_lock if self._shared is not None else _nolock():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteCursor(conn.cursor())
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._shared_lock if self._shared is not None else _nolock():
            cursor = _SqliteCursor(self._conn().cursor())
            cursor.execute(sql, params)
            return cursor.fetchall()

    def stream(self, sql: str, params: Sequence[Any] = (), batch: int = 1000) -> Iterator[Row]:
        # A dedicated connection: the stream may outlive other work on this thread.
        conn = self._connect() if self._shared is None else self._shared
        try:
            cursor = conn.execute(sql.replace("%s", "?"), tuple(params))
            while rows := cursor.fetchmany(batch):
                for row in rows:
                    yield dict(row)
        finally:
            if conn is not self._shared:
                conn.close()

    def try_lock(self, name: str) -> bool:
        if self._path == ":memory:" or name in self._lock_files:
            return True
        fd = os.open(f"{self._path}.{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_files[name] = fd
        return True

    def holds_lock(self, name: str) -> bool:
        # An flock lives as long as its descriptor: once taken it cannot be lost.
        return self._path == ":memory:" or name in self._lock_files

    def close(self) -> None:
        for fd in self._lock_files.values():
            os.close(fd)
        self._lock_files.clear()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        if self._shared is not None:
            self._shared.close()


@contextmanager
def _nolock() -> Iterator[None]:
    yield


class _PgCursor:
    def __init__(self, cursor: psycopg.Cursor[Row]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(sql.encode(), tuple(params))

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql.encode(), [tuple(p) for p in params])

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self._cursor.copy(statement.encode()) as copy:
            for row in rows:
                copy.write_row(row)

    def fetchall(self) -> list[Row]:
        return self._cursor.fetchall()

    def fetchone(self) -> Row | None:
        return self._cursor.fetchone()


@contextmanager
def _outage() -> Iterator[None]:
    """Where the read store's outages enter: lost connections and pool timeouts become UnavailableError."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as error:
        raise UnavailableError("the read store is unreachable; try again shortly") from error


def _relaxed(conn: psycopg.Connection[Row]) -> Iterator[_PgCursor]:
    """A transaction that commits without waiting for its WAL flush (ReadStore.transaction `relaxed`),
    begun and relaxed in one round trip: a query without parameters goes as a simple query, which may
    hold several statements. psycopg would send its own BEGIN first (a round trip of its own) outside
    autocommit, so the connection is in autocommit while this transaction runs, which it begins and
    ends itself."""
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(b"BEGIN; SET LOCAL synchronous_commit = off")
            try:
                yield _PgCursor(cursor)
            except BaseException:
                if conn.info.transaction_status != pq.TransactionStatus.UNKNOWN:
                    with suppress(psycopg.Error):
                        cursor.execute(b"ROLLBACK")
                raise
            cursor.execute(b"COMMIT")
    finally:
        # Back to the pool as it came (a connection left in a transaction is rolled back or discarded by the pool).
        if conn.info.transaction_status == pq.TransactionStatus.IDLE:
            conn.autocommit = False


class PostgresReadStore:
    dialect = "postgres"

    def __init__(self, db: Database, pool_size: int = 4, timeout: float = 5.0) -> None:
        self._db = db
        # Half the outage bound per call (see event_store_env), in whole seconds for libpq.
        self._connect_timeout = max(1, round(timeout / 2))
        kwargs: dict[str, Any] = {
            "row_factory": dict_row,
            "autocommit": False,
            "connect_timeout": self._connect_timeout,
        }
        if db.schema:
            kwargs["options"] = f"-c search_path={db.schema}"
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            db.conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs=kwargs,
            open=True,
            name="stagekeeper-read",
            # During an outage a caller waits this long for a connection, then gets a 503.
            timeout=timeout / 2,
            # Connections broken by a server restart are dropped before use, not handed out; a
            # quiet socket needs no round trip to know that (adapters/pgcheck.py).
            check=quiet_or_checked,
        )
        self._locks: dict[str, AdvisoryLock] = {}

    @contextmanager
    def transaction(self, relaxed: bool = False) -> Iterator[_PgCursor]:
        if relaxed:
            with _outage(), self._pool.connection() as conn:
                yield from _relaxed(conn)
            return
        with _outage(), self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield _PgCursor(cursor)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with _outage(), self._pool.connection() as conn, conn.cursor() as cursor:
            cursor.execute(sql.encode(), tuple(params))
            rows = cursor.fetchall()
            conn.rollback()
            return rows

    def stream(self, sql: str, params: Sequence[Any] = (), batch: int = 1000) -> Iterator[Row]:
        # A named (server-side) cursor keeps memory flat for exports of any size.
        with (
            _outage(),
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name="sk_stream") as cursor,
        ):
            cursor.itersize = batch
            cursor.execute(sql.encode(), tuple(params))
            yield from cursor

    def try_lock(self, name: str) -> bool:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = AdvisoryLock(self._db, name)
        return lock.try_acquire()

    def holds_lock(self, name: str) -> bool:
        lock = self._locks.get(name)
        return lock is not None and lock.holds()

    def close(self) -> None:
        for lock in self._locks.values():
            lock.close()
        self._locks.clear()
        self._pool.close()


def open_read_store(db: Database, timeout: float = 5.0) -> ReadStore:
    if db.kind in ("sqlite", "memory"):
        return SqliteReadStore(db.path)
    return PostgresReadStore(db, timeout=timeout)
