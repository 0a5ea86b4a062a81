"""The event store's PostgreSQL recorder with group commit: concurrent writes share a transaction.

The library's recorder locks the events table (EXCLUSIVE) in every inserting transaction, so
notification ids commit in the order they were issued: writes queue on that lock one by one, and
each pays its own lock, round trips, COMMIT and WAL flush. Here, writes of this process that
arrive while another one is in flight wait in a queue; when it ends, the first of them writes the
whole queue in one transaction (one lock, one COMMIT, one flush) and hands each writer its own
notification ids. No writer returns before that COMMIT has (synchronous_commit stays on). A write
that finds nobody writing goes at once, as before.

A shared transaction that fails on a uniqueness violation (a writer lost an optimistic-concurrency
race, perhaps to a writer of the same batch) stored nothing; every writer's events are then written
in a transaction of their own, so only the losers get IntegrityError and retry from a fresh read.
Any other failure reaches every writer of the batch: all of it or none of it landed, and each one
finds out which (StagekeeperApplication.commit). Installed by `APPLICATION_RECORDER_TOPIC`
(adapters/settings.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

# The library's insert without its retry loop: an insert is tried once (domain/outage.py).
_insert_once = PostgresApplicationRecorder.insert_events.__wrapped__


class _Write:
    """One caller's events, waiting for a batch; its outcome once the batch is written."""

    def __init__(self, events: Sequence[StoredEvent]) -> None:
        self.events = events
        self.ready = threading.Event()  # its outcome is known, or it leads the next batch
        self.leads = False
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None

    def settle(self, ids: Sequence[int] | None = None, error: BaseException | None = None) -> None:
        self.ids, self.error = ids, error
        self.ready.set()

    def outcome(self) -> Sequence[int] | None:
        if self.error is not None:
            # Each waiting thread raises its own exception (one object raised in several threads
            # would have its traceback rewritten by each); the shared one is its cause.
            raise _own(self.error) from self.error
        return self.ids


def _own(error: BaseException) -> BaseException:
    try:
        return type(error)(*error.args)
    except Exception:  # an exception class with another constructor: raise the shared one
        return error


class GroupCommitRecorder(PostgresApplicationRecorder):
    """PostgreSQL application recorder whose concurrent inserts are written in shared transactions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue: list[_Write] = []
        self._writing = False
        self._queue_lock = threading.Lock()

    def queued(self) -> int:
        """How many writes wait for the one in flight."""
        with self._queue_lock:
            return len(self._queue)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events or any(value is not None for value in kwargs.values()):
            # A tracking record (a process application's; the library passes tracking=None
            # otherwise) or nothing to write: the library's own way.
            return _insert_once(self, stored_events, **kwargs)  # type: ignore[no-any-return]
        mine = _Write(stored_events)
        with self._queue_lock:
            self._queue.append(mine)
            leads = not self._writing
            self._writing = True
        if not leads:
            mine.ready.wait()
            if not mine.leads:
                return mine.outcome()
        with self._queue_lock:
            batch, self._queue = self._queue, []
        try:
            self._write(batch)
        finally:
            with self._queue_lock:
                if self._queue:
                    # The next batch is led by its first writer (this thread returns to its caller).
                    self._queue[0].leads = True
                    self._queue[0].ready.set()
                else:
                    self._writing = False
        return mine.outcome()

    def _write(self, batch: list[_Write]) -> None:
        if len(batch) == 1:
            self._write_alone(batch[0])
            return
        events = [event for write in batch for event in write.events]
        try:
            ids = _insert_once(self, events)
        except IntegrityError:
            # Nothing of the batch was stored: each write on its own, so only the losers fail.
            for write in batch:
                self._write_alone(write)
            return
        except BaseException as error:
            for write in batch:
                write.settle(error=error)
            if not isinstance(error, Exception):
                raise
            return
        start = 0
        for write in batch:
            end = start + len(write.events)
            write.settle(ids=ids[start:end] if ids is not None else None)
            start = end

    def _write_alone(self, write: _Write) -> None:
        try:
            write.settle(ids=_insert_once(self, write.events))
        except BaseException as error:
            write.settle(error=error)
