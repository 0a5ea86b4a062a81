"""Quarantine: an event a read model cannot apply is recorded and passed, never retried forever.

One bad event (a field an older version did not write, a value the database refuses) must not
stop a read model for good, nor hold back the others. When a batch fails, the follower applies
it again one projection and one event at a time, each event inside a savepoint; an event that
still fails is rolled back alone and recorded here (projection, position, error), and /healthz
reports it. Failures of the database itself (connection lost, lock timeout, serialisation) are
not the event's fault: they propagate, and the follower retries the batch later.
"""

from __future__ import annotations

from datetime import UTC, datetime

from domain.errors import UnavailableError
from projections.base import iso
from projections.store import Cursor, ReadStore, Row

# Both DB-API drivers (sqlite3 and psycopg) name their "the database, not the statement, failed"
# errors so; psycopg's lock, deadlock and serialisation failures derive from OperationalError too.
_TRANSIENT = frozenset({"OperationalError", "InterfaceError"})


def transient(error: BaseException) -> bool:
    """True when the database failed rather than the event: retry later, do not quarantine.
    That includes the event store being unreachable while a read model loads an aggregate."""
    if isinstance(error, UnavailableError):
        return True
    return any(cls.__name__ in _TRANSIENT for cls in type(error).__mro__)


def record(cursor: Cursor, name: str, position: int, error: BaseException) -> None:
    cursor.execute(
        "INSERT INTO sk_quarantine (name, position, error, at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (name, position) DO UPDATE SET error = excluded.error, at = excluded.at",
        (name, position, f"{type(error).__name__}: {error}"[:2000], iso(datetime.now(UTC))),
    )


def quarantined(store: ReadStore) -> list[Row]:
    """Every event a read model passed over, oldest first."""
    return store.query("SELECT name AS projection, position, error, at FROM sk_quarantine ORDER BY position, name")
