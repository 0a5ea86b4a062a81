"""The read-model storage port: SQL tables beside the event store (SQLite or PostgreSQL).

Projections write with portable SQL: `%s` placeholders, `INSERT ... ON CONFLICT`, JSON kept in
TEXT columns, times as ISO-8601 UTC text (which sorts chronologically).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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

    def transaction(self, relaxed: bool = False) -> AbstractContextManager[Cursor]:
        """A cursor whose writes commit together when the block exits without error.

        `relaxed`: the transaction commits without waiting for its WAL flush (PostgreSQL), for what is
        derived from the durable event store and redone from it: read models and tracking positions.
        A kill of this process loses nothing committed; a crash of the database itself may lose the last
        such commits (never a part of one: the rows and their positions go together), and the events
        after the positions kept are applied or handled again. Most of such a commit's time is the
        flush. Writes that are not derivable keep the default. (SQLite: no difference.)
        """
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


def tracking_positions(cursor: Cursor, names: Sequence[str], for_update: bool = False) -> dict[str, int]:
    """Several followers' positions in one statement (0 for one never tracked). `for_update`
    (PostgreSQL) locks their rows in name order, so followers locking the same rows take turns."""
    if not names:
        return {}
    marks = ", ".join(["%s"] * len(names))
    lock = " ORDER BY name FOR UPDATE" if for_update else ""
    cursor.execute(f"SELECT name, position FROM sk_tracking WHERE name IN ({marks}){lock}", list(names))  # noqa: S608
    found = {str(row["name"]): int(row["position"]) for row in cursor.fetchall()}
    return {name: found.get(name, 0) for name in names}


def set_trackings(cursor: Cursor, names: Sequence[str], position: int) -> None:
    """Several followers moved to one position in one statement (in name order, as they were locked)."""
    if not names:
        return
    ordered = sorted(names)
    values = ", ".join(["(%s, %s)"] * len(ordered))
    cursor.execute(
        f"INSERT INTO sk_tracking (name, position) VALUES {values} "  # noqa: S608
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        [value for name in ordered for value in (name, position)],
    )


def safe_text(value: Any) -> Any:
    """Text PostgreSQL can store: NUL becomes the six characters `\\u0000` (as JSON writes it).

    PostgreSQL refuses NUL in text; an event holding one must still be readable. Read models
    escape it on every database, so SQLite and PostgreSQL show the same text; the audit hash
    covers the stored event itself, never this text.
    """
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\\u0000")
    return value


def nul_free(states: Iterable[bytes]) -> bool:
    """Whether no value parsed from these stored events can hold NUL. JSON writes NUL in a string
    only as the escape `\\u0000` (a raw control character is not valid JSON), so text without that
    escape cannot produce one; text with it (even an escaped backslash before `u0000`) is checked
    value by value."""
    return not any(b"\\u0000" in state for state in states)


class SafeCursor:
    """The cursor projections write through: every text parameter goes through `safe_text`.

    `nul_free`: the caller knows no value written holds NUL (`nul_free` of the batch's events), so a
    bulk copy skips the check of every value of every row (it was a quarter of a catch-up's writer).
    """

    def __init__(self, cursor: Cursor, nul_free: bool = False) -> None:
        self._cursor = cursor
        self._nul_free = nul_free

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(sql, [safe_text(p) for p in params])

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql, [[safe_text(p) for p in row] for row in params])

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self._nul_free:
            self._cursor.copy_rows(table, columns, rows)
            return
        # `safe_text` inlined: a bulk copy passes every value of every row through it.
        self._cursor.copy_rows(
            table,
            columns,
            [[p.replace("\x00", "\\u0000") if isinstance(p, str) and "\x00" in p else p for p in row] for row in rows],
        )

    def fetchall(self) -> list[Row]:
        return self._cursor.fetchall()

    def fetchone(self) -> Row | None:
        return self._cursor.fetchone()
