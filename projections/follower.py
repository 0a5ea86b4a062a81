"""Followers of the notification log: projections and the process manager.

A projection's rows and its tracking position commit in one read-store transaction, so each
event is applied exactly once and a stopped follower resumes where it left off. The process
manager's side effects happen outside any transaction; it records every step as an event and
checks what already exists before acting, and its tracking only advances once an event's work
is finished.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from eventsourcing.persistence import Notification

from projections import quarantine
from projections.base import Projection
from projections.pipeline import (
    Reader,
    ReaderSpec,
    Stated,
    chained,
    ids_of,
    no_cycle_collection,
    nul_free_of,
    topics_of,
)
from projections.raw import RawEvent
from projections.schema import (
    create_missing,
    drop_indexes,
    index_table,
    install,
    secondary_indexes,
    truncate_empty,
)
from projections.store import (
    Cursor,
    ReadStore,
    SafeCursor,
    set_tracking,
    set_trackings,
    tracking_position,
    tracking_positions,
)

__all__ = ["EventSource", "Follower", "ProcessFollower", "ProjectionFollower", "install"]

log = logging.getLogger(__name__)

BATCH = 2500
# A read model at position zero with at least this many events to apply is built without its plain
# indexes, which are built once at the end: one sort per index instead of a b-tree insertion per
# row and index (on PostgreSQL the audit log's indexes were most of the rebuild's database time).
BULK_FROM = 20_000

# A catch-up with at least this many events to go reads and parses them in a second process
# (projections/pipeline.py), when the follower has a `reader` (PostgreSQL): starting one takes a
# few hundred milliseconds.
PROCESS_FROM = 20_000

# A reader process's batches are this many times the follower's own: a long catch-up then takes
# half as many transactions, tracking round trips and per-batch reads of existing rows.
READER_BATCHES = 2

# Plain indexes built at once after a bulk build (PostgreSQL; the read store's pool holds four connections).
INDEX_BUILDERS = 2

Handler = Callable[[Any, int, Cursor], None]
# The read-ahead thread lets go of the interpreter this often (in events), so the writer, back from
# a PostgreSQL round trip, does not wait a whole switch interval (5 ms) for it.
YIELD_EVERY = 16


@dataclass
class Batch:
    notifications: Sequence[Notification]
    parsed: list[RawEvent] | None = None  # every notification parsed, or None
    decoded: dict[int, Any] = field(default_factory=dict)  # position -> domain event, for the decoded projections


class EventSource(Protocol):
    """The slice of the application a follower reads."""

    def select_notifications(self, start: int, limit: int, topics: Sequence[str] = ()) -> Sequence[Notification]: ...

    def decode(self, notification: Notification) -> Any: ...

    def head(self) -> int: ...


class Follower(Protocol):
    name: str

    def position(self) -> int: ...

    def catch_up(self, until: int | None = None) -> int:
        """Process what is pending; returns the number of notifications processed."""
        ...


class ProjectionFollower:
    """Follows the log for a group of projections: each notification is read and decoded once,
    and every projection's rows and tracking position commit in one transaction."""

    name = "projections"

    def __init__(
        self,
        source: EventSource,
        store: ReadStore,
        projections: Sequence[Projection],
        batch: int = BATCH,
        bulk_from: int = BULK_FROM,
        reader: ReaderSpec | None = None,
        process_from: int = PROCESS_FROM,
    ) -> None:
        self.source = source
        self.store = store
        self.projections = list(projections)
        self.batch = batch
        self.bulk_from = bulk_from
        # How a reader process opens the event store (None: this process reads for itself).
        self.reader = reader if store.dialect == "postgres" and any(p.raw for p in self.projections) else None
        self.process_from = process_from
        # PostgreSQL only: the SQLite event store interlocks its readers with the read models' writer.
        self.read_ahead = store.dialect == "postgres"
        # Plain indexes this follower dropped for a bulk build and has not built again yet. If the
        # process dies first, `install` creates them at the next start (it creates whatever is missing).
        self._dropped: dict[str, list[str]] = {}
        # Which decoded projections handle a topic, found once per topic.
        self._dispatch: dict[str, list[tuple[Projection, Handler]]] = {}
        # The positions this follower's last batch committed, and whether that batch was full (None:
        # unknown, read them). A pass woken by a new commit starts from them (two round trips fewer:
        # the read and its rollback); the locked read in the batch's transaction still checks them,
        # and a pass that finds nothing to read checks them before it says it is caught up.
        self._committed: tuple[dict[str, int], bool] | None = None

    def positions(self) -> dict[str, int]:
        names = [p.name for p in self.projections]
        marks = ", ".join(["%s"] * len(names))
        rows = self.store.query(f"SELECT name, position FROM sk_tracking WHERE name IN ({marks})", names)  # noqa: S608
        found = {r["name"]: int(r["position"]) for r in rows}
        return {name: found.get(name, 0) for name in names}

    def position(self) -> int:
        return min(self.positions().values(), default=0)

    def _locked_positions(self, cursor: Cursor) -> dict[str, int]:
        lock = self.store.dialect == "postgres"
        return tracking_positions(cursor, [p.name for p in self.projections], for_update=lock)

    def catch_up(self, until: int | None = None) -> int:
        processed = self._follow(until)
        # Only once the read models are caught up: an error on the way leaves the indexes to the
        # next call (or to `install`); the rows and positions are consistent either way.
        if self._dropped:
            self._build_indexes()
        return processed

    def _follow(self, until: int | None) -> int:
        processed = 0
        pool: ThreadPoolExecutor | None = None
        ahead: tuple[int, Future[Batch]] | None = None
        reader: Reader | None = None
        # The positions the last batch committed (None: read them), this loop's or, at the start, the
        # last pass's (`_committed`). Another process that moved them since is found by the locked
        # read in the batch's transaction, and the loop starts over.
        kept = self._committed
        self._committed = None
        committed: dict[str, int] | None = kept[0] if kept is not None else None
        # Whether a reader process is worth it (`_start_reader` reads the head) is considered once: at
        # the first batch, unless the last pass ended on a short batch (it had caught up: in the steady
        # state, no head read a pass); then after a full batch, which says more follows.
        caught_up = kept is not None and not kept[1]
        considered = full = False
        try:
            while True:
                cached = committed is not None
                positions = self.positions() if committed is None else committed
                committed = None
                start = min(positions.values(), default=0)
                if until is not None and start >= until:
                    if cached:
                        continue  # said by the kept positions: read them
                    return processed
                batch: Batch | None = None
                if reader is None and not considered and ((processed == 0 and not caught_up) or full):
                    considered = True
                    if ahead is not None and ahead[0] == start + 1:
                        batch = ahead[1].result()  # (read ahead: the reader process starts after it)
                    # Started first: the reader process's start-up (its imports, a connection, the first
                    # batch) overlaps the bulk build's preparation below (TRUNCATE, DROP INDEX) and the
                    # batch from `start`, which this process reads (unless it did) and applies itself.
                    reader, batch = self._start_reader(positions, start, until, batch)
                if start == 0:
                    self._start_bulk(positions)
                # Read the events before opening the write transaction: the SQLite event store
                # interlocks its readers with its single writer, so reading inside our own write
                # transaction could wait on a writer that waits on us. Every topic is read, so the
                # positions pass unrelated events too and a reader waiting for position N is released.
                if batch is None and reader is not None and reader.expected == start + 1 and not reader.finished:
                    taken = reader.take()
                    if taken is not None:
                        batch = Batch(*taken)
                if batch is None and ahead is not None and ahead[0] == start + 1:
                    batch = ahead[1].result()
                if batch is None:
                    batch = self._read(start + 1, prepare=False)
                ahead = None
                notifications = batch.notifications
                if not notifications:
                    if cached:
                        continue  # nothing after the kept positions: read them before saying so
                    self._committed = (positions, False)
                    return processed
                # (By the columns: a batch from a reader process makes only the notifications asked for.)
                last = ids_of(notifications)[-1]
                if reader is not None and (reader.expected != last + 1 or reader.finished):
                    # The reader is done, or of no more use (positions moved elsewhere, or it failed).
                    reader.close()
                    reader = None
                if self.read_ahead and reader is None and len(notifications) == self.batch:
                    # More is likely to follow: the next batch is read and parsed on another thread
                    # while this one is written (the thread runs while this one waits on PostgreSQL).
                    pool = pool or ThreadPoolExecutor(1, thread_name_prefix="sk-read-ahead")
                    following = last + 1
                    ahead = (following, pool.submit(self._read, following, True))
                try:
                    with no_cycle_collection(), self.store.transaction(relaxed=True) as plain:
                        cursor = SafeCursor(plain, nul_free_of(notifications))
                        # Several processes may follow at once: the row locks make them take turns, and
                        # whoever finds a position moved since its read starts over.
                        if self._locked_positions(cursor) != positions:
                            continue
                        self._apply(self.projections, notifications, positions, cursor, batch.decoded, batch.parsed)
                        set_trackings(cursor, [p.name for p in self.projections], last)
                    for projection in self.projections:
                        projection.committed()
                    committed = {name: last for name in positions}
                    full = len(notifications) == self.batch
                except Exception as error:
                    if quarantine.transient(error):
                        raise
                    log.warning("a batch from position %d failed (%s); applying it event by event", start + 1, error)
                    self._apply_isolated(notifications)
                processed += len(notifications)
                if len(notifications) < self.batch:
                    if committed is not None:
                        self._committed = (committed, False)
                    return processed
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            if reader is not None:
                reader.close()

    def _start_reader(
        self, positions: dict[str, int], start: int, until: int | None, first: Batch | None = None
    ) -> tuple[Reader | None, Batch | None]:
        """A reader process, when it is worth one (at least `process_from` events to go), and the batch
        from `start` (`first`, if read already): read here, the reader process starts after it, and this
        process applies it while that one starts up (its imports alone take a few hundred milliseconds)."""
        if self.reader is None:
            return None, first
        end = self.source.head() if until is None else min(until, self.source.head())
        if end - start < self.process_from:
            return None, first
        keys = self._keys()
        # Started before the first batch is read: told where to begin once it is.
        reader = Reader(
            self.reader,
            None,
            self.batch * READER_BATCHES,
            keys,
            sized=self._sized(keys),
            stated=self._stated(),
            load=self.source.select_notifications,
        )
        try:
            if first is None:
                first = Batch(self.source.select_notifications(start + 1, self.batch))
            if len(first.notifications) < self.batch:
                reader.close()
                return None, first  # (a short batch: nothing after it for a reader process)
            reader.begin(
                first.notifications[-1].id + 1, chained(first.notifications, self._chain_head(positions, start))
            )
        except BaseException:
            reader.close()
            raise
        return reader, first

    def _stated(self) -> Stated:
        """The topics (and `@on("Aggregate.*")` prefixes) the decoded projections handle: the stored states
        a reader process sends (the raw projections read its parsed records)."""
        decoded = [p for p in self.projections if not p.raw]
        return (
            frozenset(topic for p in decoded for topic in p.handlers),
            frozenset(prefix for p in decoded for prefix in p.prefix_handlers),
        )

    def _chain_head(self, positions: dict[str, int], start: int) -> str | None:
        """The audit chain's last hash, if a projection keeping one stands at `start` (the reader links on from it)."""
        for projection in self.projections:
            if positions[projection.name] == start:
                with self.store.transaction() as cursor:
                    head = projection.chain_head(cursor)
                if head is not None:
                    return head
        return None

    def _keys(self) -> frozenset[str] | None:
        """The state keys the raw projections read (None: all of them)."""
        keys: set[str] = set()
        for projection in self.projections:
            if projection.raw:
                if projection.reads is None:
                    return None
                keys |= projection.reads
        return frozenset(keys)

    def _sized(self, keys: frozenset[str] | None) -> frozenset[str]:
        """Of `keys`, those every raw projection reading them reads only for their length."""
        if keys is None:
            return frozenset()
        sized = set(keys)
        for projection in self.projections:
            if projection.raw and projection.reads is not None:
                sized -= projection.reads - projection.sized
        return frozenset(sized)

    def _read(self, start: int, prepare: bool) -> Batch:
        """A batch of notifications from `start`; `prepare`: also parsed, summarised and decoded as far
        as that goes without error (an event that fails is left to `_apply`, which quarantines it)."""
        batch = Batch(self.source.select_notifications(start, self.batch))
        if not prepare:
            return batch
        if any(p.raw for p in self.projections):
            try:
                parsed = []
                for n, notification in enumerate(batch.notifications):
                    parsed.append(RawEvent.parse(notification))
                    _ = parsed[-1].summary  # computed once, kept on the event
                    if n % YIELD_EVERY == 0:
                        time.sleep(0)
                batch.parsed = parsed
            except Exception:  # noqa: S110 (left to the writer, which quarantines the event)
                pass
        for n, notification in enumerate(batch.notifications):
            if n % YIELD_EVERY == 0:
                time.sleep(0)
            if self._handlers(notification.topic):
                try:
                    batch.decoded[notification.id] = self.source.decode(notification)
                except Exception:  # left to the writer, which quarantines the event
                    break
        return batch

    def _start_bulk(self, positions: dict[str, int]) -> None:
        """Drop the plain indexes of the read models that start from zero with a long way to go (and,
        on PostgreSQL, give their empty tables fresh storage)."""
        candidates = [p for p in self.projections if positions[p.name] == 0 and p.name not in self._dropped]
        if not candidates or self.source.head() < self.bulk_from:
            return
        dropped: dict[str, list[str]] = {}
        with self.store.transaction() as cursor:
            locked = self._locked_positions(cursor)
            for projection in candidates:
                if locked[projection.name] == 0:
                    if self.store.dialect == "postgres":
                        truncate_empty(cursor, projection.tables)
                    if secondary_indexes(projection):
                        dropped[projection.name] = secondary_indexes(projection)
                        drop_indexes(cursor, dropped[projection.name])
        self._dropped.update(dropped)
        if dropped:
            log.info("building read models %s from zero; their indexes are built at the end", ", ".join(dropped))

    def _build_indexes(self) -> None:
        projections = [p for p in self.projections if p.name in self._dropped]
        ddls = [ddl for dropped in self._dropped.values() for ddl in dropped]
        if self.store.dialect == "postgres" and len(ddls) > 1:
            # Two at a time, each on its own connection in its own transaction (as `install` does):
            # one CREATE INDEX keeps one core busy sorting, and the builds were about a quarter of a
            # rebuild's time. Builds of one table share its lock; a transaction that holds nothing else
            # cannot deadlock with another process's follower. A build that fails leaves its index
            # (and this list) to the next call or to `install`. The largest tables' indexes go first,
            # so the two builders finish together; the statistics follow on the same two connections,
            # the smallest tables' first (while the last large indexes are still being built: ANALYZE
            # waits for the builds of its own table, whose lock it cannot share).
            sizes = self._sizes([table for projection in projections for table in projection.tables])
            ddls.sort(key=lambda ddl: -sizes.get(index_table(ddl), 0))
            projections.sort(key=lambda projection: max(sizes.get(t, 0) for t in projection.tables))
            with ThreadPoolExecutor(INDEX_BUILDERS, thread_name_prefix="sk-index") as pool:
                builds = [pool.submit(self._build_index, ddl) for ddl in ddls]
                analyses = [pool.submit(self._analyze, [projection]) for projection in projections]
                for future in builds + analyses:
                    future.result()
        else:
            with self.store.transaction() as cursor:
                create_missing(self.store, cursor, ddls)
            self._analyze(projections)
        self._dropped.clear()

    def _sizes(self, tables: Sequence[str]) -> dict[str, int]:
        """PostgreSQL: each table's size in bytes (its heap)."""
        marks = ", ".join(["%s"] * len(tables))
        rows = self.store.query(
            f"SELECT relname AS name, pg_relation_size(oid) AS size FROM pg_class "  # noqa: S608
            f"WHERE oid = ANY(ARRAY[{marks}]::regclass[])",
            tables,
        )
        return {str(row["name"]): int(row["size"]) for row in rows}

    def _analyze(self, projections: Sequence[Projection]) -> None:
        """Planner statistics for tables just filled in bulk. Without them (autovacuum off, or not
        yet come round) PostgreSQL planned the board's page as a scan of every deployment: 63.7 ms
        against 1.9 ms after ANALYZE at 50,000 deployments. One table a transaction: ANALYZE samples
        rows and does not block the follower's or anyone's writes. Only the columns a projection
        names in `statistics` for a table, when it names them (its queries read no other's)."""
        for projection in projections:
            for table in projection.tables:
                columns = projection.statistics.get(table) if self.store.dialect == "postgres" else None
                with self.store.transaction() as cursor:
                    cursor.execute(f"ANALYZE {table}" + (f" ({', '.join(columns)})" if columns else ""))

    def _build_index(self, ddl: str) -> None:
        with self.store.transaction() as cursor:
            create_missing(self.store, cursor, [ddl])

    def _handlers(self, topic: str) -> list[tuple[Projection, Handler]]:
        found = self._dispatch.get(topic)
        if found is None:
            found = []
            for projection in self.projections:
                handler = None if projection.raw else projection.handler(topic)
                if handler is not None:
                    found.append((projection, handler))
            self._dispatch[topic] = found
        return found

    def _apply(
        self,
        projections: Sequence[Projection],
        notifications: Sequence[Notification],
        positions: dict[str, int],
        cursor: Cursor,
        decoded: dict[int, Any] | None = None,
        parsed: Sequence[RawEvent] | None = None,
    ) -> None:
        for projection in projections:
            projection.start_batch()
        raw = [p for p in projections if p.raw]
        if raw:
            if parsed is None or len(parsed) != len(notifications):
                parsed = [RawEvent.parse(n) for n in notifications]
            for projection in raw:
                position = positions[projection.name]
                # Positions only increase along a batch: all of it is fresh unless its start is not.
                fresh = parsed
                if parsed and parsed[0].position <= position:
                    fresh = [e for e in parsed if e.position > position]
                if fresh:
                    projection.apply_batch(fresh, cursor)
        chosen = None if projections is self.projections else {id(p) for p in projections}
        decoded = {} if decoded is None else decoded
        # By the columns: a batch from a reader process makes only the notifications decoded here. The
        # topics a decoded projection handles are found once per topic, not once per event.
        topics = topics_of(notifications)
        handled = {topic for topic in set(topics) if self._handlers(topic)}
        for n, (position, topic) in enumerate(zip(ids_of(notifications), topics, strict=True)):
            if topic not in handled:
                continue
            for projection, handler in self._handlers(topic):
                if (chosen is not None and id(projection) not in chosen) or position <= positions[projection.name]:
                    continue
                if position not in decoded:
                    decoded[position] = self.source.decode(notifications[n])
                handler(decoded[position], position, cursor)
        for projection in projections:
            projection.flush(cursor)

    def _apply_isolated(self, notifications: Sequence[Notification]) -> None:
        """Each projection in its own transaction, each event in its own savepoint: an event
        that fails is rolled back alone and quarantined, and the projection goes on past it."""
        decoded: dict[int, Any] = {}
        for projection in self.projections:
            with self.store.transaction() as plain:
                cursor = SafeCursor(plain)
                lock = self.store.dialect == "postgres"
                position = tracking_position(cursor, projection.name, for_update=lock)
                for notification in notifications:
                    if notification.id <= position:
                        continue
                    cursor.execute("SAVEPOINT sk_event")
                    try:
                        self._apply([projection], [notification], {projection.name: position}, cursor, decoded)
                    except Exception as error:
                        if quarantine.transient(error):
                            raise
                        cursor.execute("ROLLBACK TO SAVEPOINT sk_event")
                        log.error(
                            "read model %s cannot apply the event at position %d; quarantined: %s",
                            projection.name,
                            notification.id,
                            error,
                        )
                        quarantine.record(cursor, projection.name, notification.id, error)
                    cursor.execute("RELEASE SAVEPOINT sk_event")
                set_tracking(cursor, projection.name, max(position, notifications[-1].id))
            projection.committed()

    def rebuild(self, name: str) -> int:
        """Drop one projection's rows, tracking and quarantined events, then replay it from position zero."""
        [projection] = [p for p in self.projections if p.name == name]
        with self.store.transaction() as cursor:
            for table in projection.tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
            cursor.execute("DELETE FROM sk_quarantine WHERE name = %s", (name,))
            set_tracking(cursor, name, 0)
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
        # Read once: then the position this call wrote last (one leader follows under a name).
        start = self.position()
        while True:
            head = self.source.head()
            if start >= head or (until is not None and start >= until):
                return processed
            notifications = self.source.select_notifications(start + 1, self.batch, self.topics)
            if not notifications:
                # Nothing of interest up to the head: skip ahead.
                self._advance(head)
                return processed
            # A batch short of `batch` holds every event of interest up to `head` (read before it; the
            # store's positions become visible in order): the last one's tracking write moves on to the
            # head, past the events of no interest after it, rather than a loop more to skip them.
            through = head if len(notifications) < self.batch and (until is None or head <= until) else 0
            for notification in notifications:
                self.handle(self.source.decode(notification))
                start = max(notification.id, through) if notification is notifications[-1] else notification.id
                self._advance(start)
                processed += 1

    def _advance(self, position: int) -> None:
        """Tracking moved on (`relaxed`: a position lost in a crash of the database means events
        handled again, as after a process killed between an event's work and its tracking; every
        process manager's steps are idempotent, their effects recorded as durable events)."""
        with self.store.transaction(relaxed=True) as cursor:
            set_tracking(cursor, self.name, position)
