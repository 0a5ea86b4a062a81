"""PostgreSQL advisory locks held by one Stagekeeper process: who leads the process manager."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from typing import Any

import psycopg

from adapters.settings import Database


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
            if self._held and self._conn is not None and not (self._conn.closed or self._conn.broken):
                # Released before the connection closes: the server ends a closed session's
                # backend (and its locks) a moment later, and a standby asking at once would
                # still find the lock held.
                with contextlib.suppress(psycopg.Error):  # closing the connection releases it anyway
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            self._forget()
