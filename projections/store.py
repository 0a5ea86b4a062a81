"""The read-model storage port: SQL tables beside the event store (SQLite or PostgreSQL).

Projections write with portable SQL: `%s` placeholders, `INSERT ... ON CONFLICT`, JSON kept in
TEXT columns, times as ISO-8601 UTC text (which sorts chronologically).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

Row = dict[str, Any]


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None: ...

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Append many rows fast (COPY on PostgreSQL)."""
        ...

    def fetchall(self) -> list[Row]: ...

    def fetchone(self) -> Row | None: ...


class ReadStore(Protocol):
    """Transactions over the read-model tables, plus one lock per follower name."""

    dialect: str  # "sqlite" | "postgres"

    def transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor whose writes commit together when the block exits without error."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a read-only query."""
        ...

    def stream(self, sql: str, params: Sequence[Any] = (), batch: int = 1000) -> Iterator[Row]:
        """Yield rows of a large query without loading them all."""
        ...

    def try_lock(self, name: str) -> bool:
        """Take the exclusive lock `name` for this process (held until close); False if held elsewhere."""
        ...

    def holds_lock(self, name: str) -> bool:
        """Whether this process still holds lock `name` (asked of the database, not remembered)."""
        ...

    def close(self) -> None: ...


TRACKING_DDL = ("CREATE TABLE IF NOT EXISTS sk_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",)


def tracking_position(cursor: Cursor, name: str, for_update: bool = False) -> int:
    """The follower's position; `for_update` (PostgreSQL) serialises concurrent followers."""
    lock = " FOR UPDATE" if for_update else ""
    cursor.execute("SELECT position FROM sk_tracking WHERE name = %s" + lock, (name,))  # noqa: S608
    row = cursor.fetchone()
    return int(row["position"]) if row else 0


def set_tracking(cursor: Cursor, name: str, position: int) -> None:
    cursor.execute(
        "INSERT INTO sk_tracking (name, position) VALUES (%s, %s) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        (name, position),
    )
