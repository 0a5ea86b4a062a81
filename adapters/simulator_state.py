"""Where the simulated vCenter keeps its inventory between restarts: a JSON file (beside a SQLite
database, or STAGEKEEPER_SIMULATOR_STATE), or a table in the PostgreSQL schema of the event store."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Protocol

import psycopg

from adapters.settings import Database

TABLE_DDL = "CREATE TABLE IF NOT EXISTS sk_simulator_state (name TEXT PRIMARY KEY, state TEXT NOT NULL)"


class InventoryState(Protocol):
    def load(self) -> dict[str, Any] | None: ...

    def save(self, data: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class FileState:
    """The inventory in a JSON file, replaced atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        return json.loads(self.path.read_text()) if self.path.exists() else None

    def save(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)

    def close(self) -> None:
        pass  # nothing held open between saves


class PostgresState:
    """The inventory as one row of `sk_simulator_state` in the event store's schema, so a
    restarted Stagekeeper on PostgreSQL still sees the VMs it simulated (like the file on SQLite)."""

    def __init__(self, db: Database, name: str = "vcenter") -> None:
        self._db = db
        self._name = name
        self._conn: psycopg.Connection[Any] | None = None
        self._mutex = threading.Lock()
        self._connection().execute(TABLE_DDL)

    def _connection(self) -> psycopg.Connection[Any]:
        # One connection, replaced only when it broke (a database restart).
        if self._conn is None or self._conn.closed or self._conn.broken:
            options = f"-c search_path={self._db.schema}" if self._db.schema else ""
            self._conn = psycopg.connect(self._db.conninfo, autocommit=True, options=options)
        return self._conn

    def load(self) -> dict[str, Any] | None:
        with self._mutex:
            row = (
                self._connection()
                .execute("SELECT state FROM sk_simulator_state WHERE name = %s", (self._name,))
                .fetchone()
            )
        return json.loads(row[0]) if row else None

    def save(self, data: dict[str, Any]) -> None:
        with self._mutex:
            self._connection().execute(
                "INSERT INTO sk_simulator_state (name, state) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state",
                (self._name, json.dumps(data)),
            )

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
