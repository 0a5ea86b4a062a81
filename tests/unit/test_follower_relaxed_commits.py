"""The process follower's tracking writes commit without waiting for the WAL flush on PostgreSQL
(a `relaxed` transaction, projections/store.py): what they hold is redone from the durable event store.
Its position is read once a catch-up (then it is the one the call wrote)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import Notification

from projections.follower import ProcessFollower


class Store:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.transactions: list[list[str]] = []
        self.position = 0

    @contextmanager
    def transaction(self, relaxed: bool = False) -> Iterator[Any]:
        statements: list[str] = ["(relaxed)"] if relaxed else []
        store = self

        class Cursor:
            def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
                statements.append(sql)
                if sql.startswith("INSERT INTO sk_tracking"):
                    store.position = int(params[1])

            def fetchone(self) -> dict[str, Any] | None:
                return {"position": store.position}

        yield Cursor()
        self.transactions.append(statements)


class Source:
    def __init__(self, count: int) -> None:
        self.notifications = [
            Notification(id=i, originator_id=uuid4(), originator_version=1, topic="t:E", state=b"{}")
            for i in range(1, count + 1)
        ]

    def head(self) -> int:
        return len(self.notifications) + 2  # two more events, of no interest

    def select_notifications(self, start: int, limit: int, topics: Sequence[str] = ()) -> list[Notification]:
        return [n for n in self.notifications if n.id >= start][:limit]

    def decode(self, notification: Notification) -> object:
        return notification.id


def writes(store: Store) -> list[list[str]]:
    return [t for t in store.transactions if any(s.startswith("INSERT INTO sk_tracking") for s in t)]


def test_tracking_writes_are_relaxed() -> None:
    store, handled = Store("postgres"), list[object]()
    follower = ProcessFollower(Source(3), store, "p", ("t:E",), handled.append)  # type: ignore[arg-type]
    assert follower.catch_up() == 3
    assert handled == [1, 2, 3]
    assert store.position == 5  # past the events of no interest
    tracked = writes(store)
    assert len(tracked) == 3  # after each event, the last one's moving on to the head
    for statements in tracked:
        assert statements[0] == "(relaxed)"


def test_the_position_is_read_once_a_catch_up() -> None:
    store, handled = Store("postgres"), list[object]()
    source = Source(2)
    follower = ProcessFollower(source, store, "p", ("t:E",), handled.append)  # type: ignore[arg-type]
    assert follower.catch_up() == 2
    reads = [t for t in store.transactions if any(s.startswith("SELECT position") for s in t)]
    assert len(reads) == 1
    source.notifications.append(
        Notification(id=5, originator_id=uuid4(), originator_version=1, topic="t:E", state=b"{}")
    )
    assert follower.catch_up() == 1  # a new call reads the store's position again
    assert handled == [1, 2, 5]


def test_the_last_events_write_moves_on_to_the_head_only_after_its_work() -> None:
    """After the last event of a short batch, its tracking write skips the events of no interest
    up to the head read before the batch; never before the event's own work is done."""
    store, seen = Store("postgres"), list[tuple[object, int]]()
    follower = ProcessFollower(Source(2), store, "p", ("t:E",), lambda event: seen.append((event, store.position)))  # type: ignore[arg-type]
    assert follower.catch_up() == 2
    assert seen == [(1, 0), (2, 1)]  # each handled before its own position is written
    assert store.position == 4
    assert len(writes(store)) == 2


def test_a_full_batch_does_not_skip_to_the_head() -> None:
    """A batch of `batch` events may not hold every event of interest up to the head: the next
    batch is read from the last event's position."""
    store, handled = Store("postgres"), list[object]()
    follower = ProcessFollower(Source(4), store, "p", ("t:E",), handled.append, batch=2)  # type: ignore[arg-type]
    assert follower.catch_up() == 4
    assert handled == [1, 2, 3, 4]
    assert store.position == 6
