"""Followers of the notification log: projections and the process manager.

A projection's rows and its tracking position commit in one read-store transaction, so each
event is applied exactly once and a stopped follower resumes where it left off. The process
manager's side effects happen outside any transaction; it records every step as an event and
checks what already exists before acting, and its tracking only advances once an event's work
is finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from eventsourcing.persistence import Notification

from projections.base import Projection
from projections.store import TRACKING_DDL, ReadStore, set_tracking, tracking_position

log = logging.getLogger(__name__)

BATCH = 1000


class EventSource(Protocol):
    """The slice of the application a follower reads."""

    def select_notifications(
        self, start: int, limit: int, topics: Sequence[str] = ()
    ) -> Sequence[Notification]: ...

    def decode(self, notification: Notification) -> Any: ...

    def head(self) -> int: ...


class Follower(Protocol):
    name: str

    def position(self) -> int: ...

    def catch_up(self, until: int | None = None) -> int:
        """Process what is pending; returns the number of notifications processed."""
        ...


def install(store: ReadStore, projections: Sequence[Projection], followers: Sequence[str] = ()) -> None:
    """Create tracking and projection tables and tracking rows (idempotent)."""
    with store.transaction() as cursor:
        for ddl in TRACKING_DDL:
            cursor.execute(ddl)
        for projection in projections:
            for ddl in projection.ddl:
                cursor.execute(ddl)
        for name in [p.name for p in projections] + list(followers):
            cursor.execute(
                "INSERT INTO sk_tracking (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
                (name,),
            )


class ProjectionFollower:
    def __init__(
        self, source: EventSource, store: ReadStore, projection: Projection, batch: int = BATCH
    ) -> None:
        self.source = source
        self.store = store
        self.projection = projection
        self.name = projection.name
        self.batch = batch

    def position(self) -> int:
        with self.store.transaction() as cursor:
            return tracking_position(cursor, self.name)

    def catch_up(self, until: int | None = None) -> int:
        processed = 0
        while True:
            start = self.position()
            if until is not None and start >= until:
                return processed
            # Read the events before opening the write transaction: the SQLite event store
            # interlocks its readers with its single writer, so reading inside our own write
            # transaction could wait on a writer that waits on us.
            # Every topic is read (not only ours) so the position passes unrelated events too,
            # and a reader waiting for position N is released.
            notifications = self.source.select_notifications(start + 1, self.batch)
            if not notifications:
                return processed
            with self.store.transaction() as cursor:
                # Several processes may follow at once: the row lock makes them take turns,
                # and whoever finds the position moved since its read starts over.
                current = tracking_position(cursor, self.name, for_update=self.store.dialect == "postgres")
                if current != start:
                    continue
                for notification in notifications:
                    handler = self.projection.handlers.get(notification.topic)
                    if handler is not None:
                        handler(self.source.decode(notification), notification.id, cursor)
                set_tracking(cursor, self.name, notifications[-1].id)
            processed += len(notifications)
            if len(notifications) < self.batch:
                return processed

    def rebuild(self) -> int:
        """Drop the projection's rows and tracking, then replay from position zero."""
        with self.store.transaction() as cursor:
            for table in self.projection.tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
            set_tracking(cursor, self.name, 0)
        return self.catch_up()


class ProcessFollower:
    """Feeds events to a process manager's `handle`; tracking advances after each event's work."""

    def __init__(
        self,
        source: EventSource,
        store: ReadStore,
        name: str,
        topics: Sequence[str],
        handle: Callable[[Any], None],
        batch: int = 100,
    ) -> None:
        self.source = source
        self.store = store
        self.name = name
        self.topics = tuple(topics)
        self.handle = handle
        self.batch = batch

    def position(self) -> int:
        with self.store.transaction() as cursor:
            return tracking_position(cursor, self.name)

    def catch_up(self, until: int | None = None) -> int:
        processed = 0
        while True:
            start = self.position()
            head = self.source.head()
            if start >= head or (until is not None and start >= until):
                return processed
            notifications = self.source.select_notifications(start + 1, self.batch, self.topics)
            if not notifications:
                # Nothing of interest up to the head: skip ahead.
                with self.store.transaction() as cursor:
                    set_tracking(cursor, self.name, head)
                return processed
            for notification in notifications:
                self.handle(self.source.decode(notification))
                with self.store.transaction() as cursor:
                    set_tracking(cursor, self.name, notification.id)
                processed += 1
