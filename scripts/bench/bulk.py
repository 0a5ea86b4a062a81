"""A bulk writer for the benchmarks: the application's own commands, their events written many
thousand to a transaction instead of one command per transaction.

Inside `Bulk(app)`, the application's `save` does not write: it collects the pending events
(the same `ProcessingEvent.collect_events` as a save) and keeps a copy of each saved aggregate,
which the repository then returns instead of reading the store (so the next command sees what
the previous one decided). Every `batch` events, and on leaving, the collected events are written
by the application's own recording path (`_record`: mapper, recorder, one transaction), then its
snapshots are taken (as a save takes them, from the store, but put in one transaction) and its
listeners told, as after a save. Collected aggregates stay cached after a write (they are what the
store now holds), up to `keep` of them, so a later command need not read them back. The events are the ones the commands
made, so the stored rows are byte-identical to one command per transaction
(tests/unit/test_bench_bulk.py compares them).

Outside a benchmark this is not safe: nothing else may write while it collects (a command's
checks see only the store and what this writer collected), and a write that fails loses the batch.
`seeded_ids` makes aggregate ids deterministic (every `uuid4` the code imported), for that test.
"""

from __future__ import annotations

import copy
import random
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent, project_aggregate
from eventsourcing.domain import Aggregate

from domain.application import StagekeeperApplication


class Bulk:
    def __init__(self, app: StagekeeperApplication, batch: int = 5000, keep: int = 20_000) -> None:
        self.app = app
        self.batch = batch
        self.keep = keep
        self.written = 0  # events written so far
        self.transactions = 0
        self._pending: ProcessingEvent[UUID] = ProcessingEvent()
        self._saved: dict[UUID, Aggregate] = {}
        # Ids the store did not have when read (governance's stop lines and freeze calendars are
        # read by every deploy and rarely exist): nothing else writes, so they stay absent until
        # this writer saves them.
        self._absent: set[UUID] = set()

    def __enter__(self) -> Bulk:
        repository = self.app.repository
        self._get = repository.get
        repository.get = self._get_collected  # type: ignore[method-assign]
        self.app.save = self._collect  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.flush()
        finally:
            del self.app.save
            del self.app.repository.get

    def _get_collected(self, aggregate_id: UUID, version: int | None = None, **kwargs: Any) -> Any:
        saved = self._saved.get(aggregate_id)
        if saved is not None:
            if version is None and not kwargs:
                # A fresh object each time, as the repository gives: a command that changes it and
                # then fails leaves the collected state alone.
                return copy.deepcopy(saved)
            self.flush()  # an older version: read from the store, where it now is
        elif aggregate_id in self._absent and version is None and not kwargs:
            raise AggregateNotFoundError(aggregate_id)
        try:
            return self._get(aggregate_id, version=version, **kwargs)
        except AggregateNotFoundError:
            if version is None and not kwargs:
                self._absent.add(aggregate_id)
            raise

    def _collect(self, *objs: Any, **kwargs: Any) -> list[Any]:
        self._pending.collect_events(*objs, **kwargs)
        for obj in objs:
            if isinstance(obj, Aggregate):
                self._saved[obj.id] = copy.deepcopy(obj)
                self._absent.discard(obj.id)
        if len(self._pending.events) >= self.batch:
            self.flush()
        return []  # no recordings yet: the commit's position is unknown (0) until the flush

    def flush(self) -> None:
        """Write what was collected in one transaction, then its snapshots, as a save does."""
        pending, self._pending = self._pending, ProcessingEvent()
        if not pending.events:
            return
        app = self.app
        recordings = app._record(pending)
        self._take_snapshots(pending)
        app._notify(recordings)
        self.written += len(pending.events)
        self.transactions += 1
        if len(self._saved) > self.keep:
            self._saved.clear()  # in the store now: read back when needed

    def _take_snapshots(self, pending: ProcessingEvent[UUID]) -> None:
        """The snapshots a save would take (Application._take_snapshots: the aggregate read back
        from the store at the event's version), put in one transaction instead of one each."""
        app = self.app
        if app.snapshots is None:
            return
        snapshots = []
        for event in pending.events:
            aggregate = pending.aggregates.get(event.originator_id)
            if aggregate is None:
                continue
            interval = app.snapshotting_intervals.get(type(aggregate))
            if interval is None or event.originator_version % interval:
                continue
            projector = app.snapshotting_projectors.get(type(aggregate), project_aggregate)
            stored = self._get(event.originator_id, version=event.originator_version, projector_func=projector)
            snapshot_class = getattr(type(stored), "Snapshot", type(app).snapshot_class)
            assert snapshot_class is not None, f"no snapshot class for {type(stored)}"
            snapshots.append(snapshot_class.take(stored))
        if snapshots:
            app.snapshots.put(snapshots)


@contextmanager
def seeded_ids(seed: int) -> Iterator[None]:
    """Every `uuid4` (uuid.uuid4 and each module's imported name for it) draws from `seed`."""
    rng = random.Random(seed)
    original = uuid.uuid4

    def seeded() -> UUID:
        return UUID(int=rng.getrandbits(128), version=4)

    patched = [m for m in list(sys.modules.values()) if getattr(m, "uuid4", None) is original]
    for module in patched:
        module.uuid4 = seeded  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in patched:
            module.uuid4 = original  # type: ignore[attr-defined]
