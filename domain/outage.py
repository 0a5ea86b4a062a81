"""Where the event store's failures enter the domain: one translation into UnavailableError.

The eventsourcing library turns psycopg's OperationalError, InterfaceError and the pool's
PoolTimeout (a psycopg OperationalError) into its own OperationalError / InterfaceError; every
call the application makes to its recorders passes through `GuardedRecorder`, which raises
UnavailableError instead, so an outage is a 503 everywhere. IntegrityError (a lost race) is a
DatabaseError too but passes through untouched: it is a decision, not an outage.

The library's PostgreSQL recorders retry each call up to 10 times on those errors. That is
replaced here, because (a) ten pool waits in a row leave a request hanging far past any bound,
and (b) an insert whose COMMIT was interrupted may have landed: inserting it again fails on its
own write (IntegrityError), and the command then decides again against its own effect (the
"name already taken" after a create that succeeded). So inserts are tried once, and the
application finds out whether an interrupted one landed (StagekeeperApplication.commit); reads
are tried again only within a time budget.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError

from domain.errors import UnavailableError

UNREACHABLE = "the event store is unreachable; try again shortly"
ONCE = frozenset({"insert_events"})
PAUSE = 0.1


@contextmanager
def event_store_errors() -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError) as error:
        raise UnavailableError(UNREACHABLE) from error


class GuardedRecorder:
    """Wraps a recorder of the library; each call translates outage errors, within `budget` seconds."""

    def __init__(self, recorder: Any, budget: float) -> None:
        self._recorder = recorder
        self._budget = budget

    @property
    def wrapped(self) -> Any:
        """The library's recorder itself."""
        return self._recorder

    def existing(self, ids: list[Any]) -> set[Any]:
        """Which of these aggregate ids have events: one query on PostgreSQL (the library reads
        one aggregate per query, and a claim check asks about dozens that do not exist)."""
        recorder = self._recorder
        datastore, table = getattr(recorder, "datastore", None), getattr(recorder, "events_table_name", None)
        if not ids:
            return set()
        with event_store_errors():
            schema = getattr(datastore, "schema", None)
            if datastore is None or table is None or schema is None or not hasattr(datastore, "get_connection"):
                return {i for i in ids if recorder.select_events(i, limit=1)}
            from psycopg import sql  # only a PostgreSQL recorder gets here

            statement = sql.SQL("SELECT DISTINCT originator_id FROM {}.{} WHERE originator_id = ANY(%s)").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            with datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(statement, [list(ids)])
                return {row["originator_id"] for row in cursor.fetchall()}

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._recorder, name)
        if not callable(value):
            return value
        recorder = self._recorder

        def guarded(*args: Any, **kwargs: Any) -> Any:
            # Looked up on each call, so a method replaced on the recorder (a test's fault) is used.
            # The undecorated method when the library wrapped it in its own retry loop.
            raw = getattr(getattr(type(recorder), name, None), "__wrapped__", None)
            method = getattr(recorder, name)
            deadline = time.monotonic() + self._budget
            while True:
                try:
                    with event_store_errors():
                        return raw(recorder, *args, **kwargs) if raw is not None else method(*args, **kwargs)
                except UnavailableError:
                    if name in ONCE or time.monotonic() + PAUSE >= deadline:
                        raise
                    time.sleep(PAUSE)

        # Kept, so the next call finds it without coming here (two closures a call were a few
        # percent of a command's CPU).
        self.__dict__[name] = guarded
        return guarded
