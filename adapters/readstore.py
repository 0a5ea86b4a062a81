"""ReadStore implementations: SQLite (embedded default) and PostgreSQL (psycopg 3 pool)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from adapters.settings import Database
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
    def transaction(self) -> Iterator[_SqliteCursor]:
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


class PostgresReadStore:
    dialect = "postgres"

    def __init__(self, db: Database, pool_size: int = 4) -> None:
        self._db = db
        options = f"-c search_path={db.schema}" if db.schema else ""
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            db.conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"row_factory": dict_row, "autocommit": False, "options": options}
            if options
            else {"row_factory": dict_row, "autocommit": False},
            open=True,
            name="stagekeeper-read",
        )
        self._locks: dict[str, AdvisoryLock] = {}

    @contextmanager
    def transaction(self) -> Iterator[_PgCursor]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield _PgCursor(cursor)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._pool.connection() as conn, conn.cursor() as cursor:
            cursor.execute(sql.encode(), tuple(params))
            rows = cursor.fetchall()
            conn.rollback()
            return rows

    def stream(self, sql: str, params: Sequence[Any] = (), batch: int = 1000) -> Iterator[Row]:
        # A named (server-side) cursor keeps memory flat for exports of any size.
        with (
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


def advisory_key(db: Database, name: str) -> int:
    """The PostgreSQL advisory-lock key of lock `name` for this database and schema: two
    Stagekeepers on two schemas of one database never wait for each other."""
    scope = f"stagekeeper/{db.dbname}/{db.schema or 'public'}/{name}"
    return int.from_bytes(hashlib.sha256(scope.encode()).digest()[:8], "big", signed=True)


class AdvisoryLock:
    """A session-level advisory lock on one long-lived connection of its own.

    A standby keeps its connection between attempts and reconnects only when it broke. Holding
    is proved by asking the server (pg_locks for this session), so a connection that was
    terminated or lost shows as a lost lock, never as a lock still held."""

    def __init__(self, db: Database, name: str) -> None:
        self.key = advisory_key(db, name)
        self._db = db
        self._name = name
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False
        # The process thread and the process manager's parallel tasks both check the lock.
        self._mutex = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self._forget()
        if self._conn is None:
            self._conn = psycopg.connect(
                self._db.conninfo,
                autocommit=True,
                # application_name lets an operator see which process leads (pg_stat_activity).
                application_name=f"stagekeeper:{self._name}:pid={os.getpid()}",
                # A silent network loss must show up within seconds, not at the kernel's TCP timeout.
                connect_timeout=10,
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
                tcp_user_timeout=10_000,
            )
        return self._conn

    def try_acquire(self) -> bool:
        with self._mutex:
            if self._held:
                return True
            try:
                row = self._connection().execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            except psycopg.OperationalError:
                self._forget()
                raise
            self._held = bool(row and row[0])
            return self._held

    def holds(self) -> bool:
        with self._mutex:
            if not self._held or self._conn is None:
                return False
            try:
                row = self._conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND objsubid = 1"
                    " AND ((classid::bigint << 32) | objid::bigint) = %s)",
                    (self.key,),
                ).fetchone()
            except psycopg.Error:
                self._forget()
                return False
            if not (row and row[0]):
                self._forget()
                return False
            return True

    def _forget(self) -> None:
        self._held = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._mutex:
            self._forget()


def open_read_store(db: Database) -> ReadStore:
    if db.kind in ("sqlite", "memory"):
        return SqliteReadStore(db.path)
    return PostgresReadStore(db)
