"""A second process that reads and parses the notification log ahead of a long catch-up.

In one interpreter a catch-up's Python per event (reading the log, parsing the stored JSON, the
audit summary) shares one core with the writing. A reader process does that part on the other core
and sends each batch to the follower: the notifications (their stored states only where a decoded read
model needs them), and per event only the fields the raw read models read (`Projection.reads`), which load
from the pipe several times faster than the JSON parses.
The follower still applies every batch in its own transaction, as before; it falls back to reading
itself whenever the reader cannot help (it failed, or the positions moved elsewhere).
"""

from __future__ import annotations

import copyreg
import gc
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast, overload
from uuid import UUID, SafeUUID

from eventsourcing.persistence import Notification

from projections.chain import link, link_fields
from projections.raw import TOPIC_PREFIX, RawEvent, parse_state, topic_prefix
from projections.store import nul_free
from projections.summaries import summarise as summary_of

log = logging.getLogger(__name__)

# Batches the reader may be ahead of the writer (each is one batch of notifications in memory).
DEPTH = 4
# How often a blocked reader or writer looks whether the other side is still there (seconds).
POLL = 0.5
# How long a stopped reader may take to exit.
STOP_WAIT = 10.0
# A batch's records cross the pipe pickled this many at a time, and the follower's receiving thread
# loads them and makes their notifications and events this many at a time, letting go of the
# interpreter in between: loading a whole batch in one call held it for 6-25 ms, and the writer, back
# from each PostgreSQL round trip, waited for it (and for a switch interval, 5 ms, in the Python loops).
LOAD_CHUNK = 256
# Originator ids' text a reader keeps (`prepare_columns`' names): past this many, it starts again.
NAMES = 200_000

# What the reader keeps of one parsed event: (type, data with only the keys read, aggregate id,
# summary, the audit chain's hash before it and its own link, when the reader was given the chain's head).
Record = tuple[str, dict[str, Any], str, str, str | None, str | None]


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """The cycle collector paused while a batch is loaded or applied: a batch makes rows, tuples and
    dicts by the tens of thousands, in no cycle, and the collector's passes over them were about a
    fifth of the follower's time. Whatever cycle a batch does make is collected after it."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@dataclass(frozen=True)
class ReaderSpec:
    """How a reader process opens the event store: the application's name and persistence environment."""

    name: str
    env: dict[str, str]


def prepare(
    notifications: Sequence[Notification],
    keys: Collection[str] | None,
    chain: str | None,
    sized: Collection[str] = (),
) -> list[Record]:
    """Each event parsed and summarised; its audit link too, from `chain` (the hash before the first).
    Only `keys` of its state are kept (None: all), and of those, lists under `sized` keys as their length
    in `None`s (read only for their length: a configuration's machines were most of what crossed the pipe)."""
    records: list[Record] = []
    for notification in notifications:
        raw = RawEvent.parse(notification)
        data = raw.data
        if keys is not None:  # (a copy: the summary below reads the whole state)
            data = {k: v for k, v in data.items() if k in keys}
            for key in sized:
                value = data.get(key)
                if isinstance(value, list):
                    data[key] = [None] * len(value)
        after, chain = chain, None if chain is None else link(chain, notification)
        records.append((raw.type, data, raw.aggregate_id, raw.summary, after, chain))
    return records


def prepare_columns(
    sent: Columns,
    keys: Collection[str] | None,
    chain: str | None,
    sized: Collection[str] = (),
    names: dict[bytes, str] | None = None,
) -> list[Record]:
    """`prepare` of the notifications `columns` made `sent` from (the same records), without making them.
    `names`: originator ids' text by their bytes, kept across batches (the reader's): an aggregate's many
    events then share one string, which is made once and pickled once a chunk."""
    ids, originators, versions, topics, states = sent
    records: list[Record] = []
    append = records.append
    parse, summarise, prefix, linked = parse_state, summary_of, TOPIC_PREFIX, link_fields
    names = {} if names is None else names
    if len(names) > NAMES:
        names.clear()
    kinds: dict[str, str] = {}
    # Per layout of a state (its keys in order), the keys dropped and the kept ones sent as lengths: states
    # of one event type mostly share one layout, so the keys are matched once a layout, not once an event.
    layouts: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    offset = 0
    for position, version, topic, state in zip(ids, versions, topics, states, strict=True):
        kind = kinds.get(topic)
        if kind is None:
            kind = kinds[topic] = topic.removeprefix(prefix)
        data = parse(state)
        originator = originators[offset : offset + 16]
        offset += 16
        aggregate_id = names.get(originator)
        if aggregate_id is None:
            aggregate_id = names[originator] = _uuid_text(originator)
        summary = summarise(kind, data)  # (of the whole state: the keys not kept go below)
        if keys is not None:
            layout = tuple(data.keys())  # (a state that is not an object fails here, as it did)
            chosen = layouts.get(layout)
            if chosen is None:
                dropped = tuple(k for k in layout if k not in keys)
                chosen = layouts[layout] = (dropped, tuple(k for k in layout if k in keys and k in sized))
            # The parsed state itself, less the keys not kept: the same keys in the same order as a copy
            # of the kept ones, without making one.
            for key in chosen[0]:
                del data[key]
            for key in chosen[1]:
                value = data[key]
                if isinstance(value, list):
                    data[key] = [None] * len(value)
        after = chain
        if chain is not None:
            chain = linked(chain, position, aggregate_id, version, topic, state)
        append((kind, data, aggregate_id, summary, after, chain))
    return records


def _uuid_text(raw: bytes) -> str:
    """str(UUID(bytes=raw)), without the UUID."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def select_columns(recorder: Any, start: int, limit: int) -> Columns | Sequence[Notification]:
    """A batch from `start`, as `columns` would make it, read straight into columns from a PostgreSQL
    recorder (binary rows: no row dicts, UUIDs or Notification objects on the way); from another
    recorder, its notifications."""
    from eventsourcing.postgres import PostgresApplicationRecorder
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL, Identifier

    if not isinstance(recorder, PostgresApplicationRecorder):
        return recorder.select_notifications(start, limit)  # type: ignore[no-any-return]
    table, datastore = recorder.events_table_name, recorder.datastore

    statement = SQL(
        "SELECT notification_id, uuid_send(originator_id), originator_version, topic, state FROM {schema}.{table} "
        "WHERE notification_id >= %s ORDER BY notification_id LIMIT %s"
    ).format(schema=Identifier(datastore.schema), table=Identifier(table))
    with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row, binary=True) as cursor:
        cursor.execute(statement, (start, limit), prepare=True)
        rows = cursor.fetchall()
    if not rows:
        return ([], b"", [], [], [])
    ids, originators, versions, topics, states = zip(*rows, strict=True)
    return (list(ids), b"".join(originators), list(versions), list(topics), list(states))


def chained(notifications: Sequence[Notification], chain: str | None) -> str | None:
    """The audit chain's hash after these notifications, linked on from `chain` (None: none)."""
    for notification in notifications:
        chain = None if chain is None else link(chain, notification)
    return chain


def _uuid_as_bytes(value: UUID) -> tuple[type[UUID], tuple[None, bytes]]:
    return UUID, (None, value.bytes)


# A batch's notifications as columns (ids, originator ids' bytes end to end, versions, topics, states):
# lists of plain values pickle and load in about half the time of as many dataclass objects.
Columns = tuple[list[int], bytes, list[int], list[str], list[bytes]]
# Columns as they cross with a batch's records: the stored states only of the events the follower decodes
# (`Stated`), None for the others (see `Received`).
Crossing = tuple[list[int], bytes, list[int], list[str], list[bytes | None]]
# The topics whose events the follower decodes (their stored states cross the pipe), and the topic
# prefixes of its `@on("Aggregate.*")` handlers.
Stated = tuple[frozenset[str], frozenset[str]]


def stated_only(sent: Columns, stated: Stated) -> Crossing:
    """`sent` with the states of the events whose topics `stated` does not name left out."""
    topics, prefixes = stated
    wanted: dict[str, bool] = {}
    kept: list[bytes | None] = []
    for topic, state in zip(sent[3], sent[4], strict=True):
        keep = wanted.get(topic)
        if keep is None:
            keep = wanted[topic] = topic in topics or topic_prefix(topic) in prefixes
        kept.append(state if keep else None)
    return (sent[0], sent[1], sent[2], sent[3], kept)


def columns(notifications: Sequence[Notification]) -> Columns | Sequence[Notification]:
    """The notifications as columns, or as they are if an originator id is not a UUID."""
    if not all(type(n.originator_id) is UUID for n in notifications):
        return notifications
    return (
        [n.id for n in notifications],
        b"".join([n.originator_id.bytes for n in notifications]),  # type: ignore[union-attr]
        [n.originator_version for n in notifications],
        [n.topic for n in notifications],
        [n.state for n in notifications],
    )


def notifications_of(sent: Columns | Sequence[Notification]) -> Sequence[Notification]:
    """The notifications `columns` made `sent` from (equal to them, field by field)."""
    if not isinstance(sent, tuple):
        return sent
    ids, originators, versions, topics, states = sent
    made: list[Notification] = []
    offset = 0
    for position, version, topic, state in zip(ids, versions, topics, states, strict=True):
        made.append(_notification(originators[offset : offset + 16], version, topic, state, position))
        offset += 16
    return made


def _notification(originator: bytes, version: int, topic: str, state: bytes, position: int) -> Notification:
    # The frozen dataclass's fields set as its __init__ would (it has no __post_init__), without a call
    # through object.__setattr__ per field.
    notification: Notification = _new(Notification)
    notification.__dict__.update(
        originator_id=_uuid(originator), originator_version=version, topic=topic, state=state, id=position
    )
    return notification


_new, _set, _from_bytes, _UNKNOWN = object.__new__, object.__setattr__, int.from_bytes, SafeUUID.unknown


def _uuid(raw: bytes) -> UUID:
    """UUID(bytes=raw) as its __init__ makes it (its two slots), without the checks of its other forms."""
    made: UUID = _new(UUID)
    _set(made, "int", _from_bytes(raw, "big"))
    _set(made, "is_safe", _UNKNOWN)
    return made


class Received(Sequence[Notification]):
    """A batch's notifications as they crossed the pipe, in columns: each is made into a `Notification`
    only when asked for (the raw read models read the columns through `ReceivedEvent`; only the events
    a decoded read model handles, a link the follower hashes itself, or a fallback make theirs). Making
    every one was a third of the receiving thread's CPU."""

    def __init__(
        self,
        sent: Columns | Crossing,
        load: Callable[[int, int], Sequence[Notification]] | None = None,
        clean: bool | None = None,
    ) -> None:
        self.ids, self._originators, self.versions, self.topics = sent[0], sent[1], sent[2], sent[3]
        self._states: Sequence[bytes | None] = sent[4]
        self._made: list[Notification | None] = [None] * len(self.ids)
        # Reads the batch again from the event store (`select_notifications`), for states that did not cross.
        self._load = load
        # Whether no value parsed from the batch can hold NUL (`nul_free` of its states), when the reader said.
        self.nul_free = clean

    @property
    def states(self) -> list[bytes]:
        """Every event's stored state: those that did not cross the pipe are read again, the batch at once
        (only where the reader's work is not used: a fallback, or a link of the audit chain made here)."""
        if None in self._states:
            if self._load is None:
                raise RuntimeError("a state did not cross the pipe and there is no event store to read it from")
            again = self._load(self.ids[0], len(self.ids))
            if [n.id for n in again] != self.ids:
                raise RuntimeError(f"the batch from position {self.ids[0]} read again is another batch")
            self._states = [n.state for n in again]
        return cast("list[bytes]", self._states)

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Notification: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Notification]: ...

    def __getitem__(self, index: int | slice) -> Notification | Sequence[Notification]:
        if isinstance(index, slice):
            return [self[n] for n in range(*index.indices(len(self.ids)))]
        made = self._made[index]
        if made is None:
            n = index + len(self.ids) if index < 0 else index
            state = self._states[n]
            made = self._made[n] = _notification(
                self._originators[n * 16 : n * 16 + 16],
                self.versions[n],
                self.topics[n],
                self.states[n] if state is None else state,
                self.ids[n],
            )
        return made

    def __iter__(self) -> Iterator[Notification]:
        for n in range(len(self.ids)):
            yield self[n]


class ReceivedEvent(RawEvent):
    """A `RawEvent` of a `Received` batch: its notification is made when first asked for."""

    __slots__ = ("_batch", "_index")

    def __init__(
        self,
        batch: Received,
        index: int,
        position: int,
        version: int,
        topic: str,
        kind: str,
        data: dict[str, Any],
        aggregate_id: str,
        summary: str | None,
        after: str | None,
        hash: str | None,
    ) -> None:
        self._batch, self._index = batch, index
        self.position, self.version, self.topic = position, version, topic
        self.type, self.data, self.aggregate_id = kind, data, aggregate_id
        self._summary, self.after, self.hash = summary, after, hash

    @property
    def notification(self) -> Notification:
        return self._batch[self._index]


def topics_of(notifications: Sequence[Notification]) -> Sequence[str]:
    """The notifications' topics (from the columns of a `Received` batch, without making its notifications)."""
    if isinstance(notifications, Received):
        return notifications.topics
    return [n.topic for n in notifications]


def states_of(notifications: Sequence[Notification]) -> Iterable[bytes]:
    """The notifications' stored states (as `topics_of`)."""
    if isinstance(notifications, Received):
        return notifications.states
    return (n.state for n in notifications)


def nul_free_of(notifications: Sequence[Notification]) -> bool:
    """`nul_free` of the notifications' states (as the reader process found it, for a batch it sent)."""
    if isinstance(notifications, Received) and notifications.nul_free is not None:
        return notifications.nul_free
    return nul_free(states_of(notifications))


def ids_of(notifications: Sequence[Notification]) -> Sequence[int]:
    """The notifications' positions (as `topics_of`)."""
    if isinstance(notifications, Received):
        return notifications.ids
    return [n.id for n in notifications]


def unchunked(
    sent: Columns | Crossing | Sequence[Notification],
    chunks: list[bytes] | None,
    pause: Callable[[], None] = lambda: None,
    load: Callable[[int, int], Sequence[Notification]] | None = None,
    clean: bool | None = None,
) -> tuple[Sequence[Notification], list[RawEvent] | None]:
    """The notifications of `sent` and, from the `chunked` records, their parsed events; `LOAD_CHUNK` at a
    time with a `pause` after each (the receiving thread lets another thread in there). `load` and `clean`:
    as `Received` takes them."""
    if not isinstance(sent, tuple):
        records = None if chunks is None else [r for chunk in chunks for r in pickle.loads(chunk)]  # noqa: S301
        return sent, None if records is None else [RawEvent(n, *r) for n, r in zip(sent, records, strict=True)]
    received = Received(sent, load, clean)
    ids, versions, topics = received.ids, received.versions, received.topics
    if chunks is None:
        return received, None
    if len(chunks) != -(-len(ids) // LOAD_CHUNK):
        raise ValueError(f"{len(chunks)} record chunks for {len(ids)} notifications")
    parsed: list[RawEvent] = []
    event = ReceivedEvent
    for n, start in enumerate(range(0, len(ids), LOAD_CHUNK)):
        end = start + LOAD_CHUNK
        records = pickle.loads(chunks[n])  # noqa: S301 (written by the reader process this follower started)
        part = ids[start:end]
        parsed.extend(
            [
                event(received, index, position, version, topic, *record)
                for index, position, version, topic, record in zip(
                    range(start, start + len(part)), part, versions[start:end], topics[start:end], records, strict=True
                )
            ]
        )
        pause()
    return received, parsed


def _let_go() -> None:
    time.sleep(0)  # lets a thread waiting for the interpreter (the writer) in


@dataclass(frozen=True)
class Job:
    """What a reader process is asked: batches of `batch` from `start`, parsed for `keys` (`sized`: their
    lengths only), linked from `chain`."""

    spec: ReaderSpec
    start: int
    batch: int
    keys: frozenset[str] | None
    chain: str | None
    sized: frozenset[str] = frozenset()
    stated: Stated | None = None  # (None: every state crosses)


def run(job: Job, channel: Connection) -> None:  # pragma: no cover (runs in the reader process)
    """The reader process: batches from `start` until one comes back short (the head)."""
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.utils import Environment

    # This process only reads, parses and sends: what it makes is freed by reference counting, and the
    # cycle collector's passes over every batch's new objects were a third of its time.
    gc.disable()
    # A UUID pickles as its class, a state dict and an enum by default; as its 16 bytes it loads faster.
    copyreg.pickle(UUID, _uuid_as_bytes)
    # Sent from another thread: the next batch is read and parsed while this one crosses the pipe.
    outbox: queue.Queue[object] = queue.Queue(DEPTH)
    sender = threading.Thread(target=_send, args=(outbox, channel), daemon=True)
    sender.start()
    factory = InfrastructureFactory.construct(
        Environment(job.spec.name, {**job.spec.env, "CREATE_TABLE": "n", "POSTGRES_POOL_SIZE": "1"})
    )
    start, chain = job.start, job.chain
    names: dict[bytes, str] = {}
    try:
        recorder = factory.application_recorder()
        while sender.is_alive():
            sent = select_columns(recorder, start, job.batch)
            records: list[Record] | None
            try:
                if isinstance(sent, tuple):
                    records = prepare_columns(sent, job.keys, chain, job.sized, names)
                else:
                    records = prepare(sent, job.keys, chain, job.sized)
                    sent = columns(sent)
            except Exception:  # the follower parses this batch itself, and quarantines what fails
                records = None
            notifications = notifications_of(sent) if records is None else ()
            chain = records[-1][5] if records else chained(notifications, chain)
            count = len(sent[0]) if isinstance(sent, tuple) else len(sent)
            crossing: Columns | Crossing | Sequence[Notification] = sent
            clean = None
            if records is not None and isinstance(sent, tuple) and job.stated is not None:
                # The follower reads the parsed records, not the states: it gets only those it decodes.
                clean = nul_free(sent[4])
                crossing = stated_only(sent, job.stated)
            if not _post(outbox, sender, (start, crossing, records, clean)) or count < job.batch:
                break
            start = (sent[0][-1] if isinstance(sent, tuple) else sent[-1].id) + 1
    except Exception as error:
        _post(outbox, sender, f"{type(error).__name__}: {error}")
    finally:
        _post(outbox, sender, None)
        sender.join()
        factory.close()


def _post(outbox: queue.Queue[object], sender: threading.Thread, message: object) -> bool:
    """Hand a message to the sender thread; False once it stopped (the follower went away)."""
    while sender.is_alive():
        try:
            outbox.put(message, timeout=POLL)
            return True
        except queue.Full:
            continue
    return False


def chunked(records: list[Record]) -> list[bytes]:
    """A batch's records pickled `LOAD_CHUNK` at a time (`unchunked` gives them back)."""
    return [
        pickle.dumps(records[n : n + LOAD_CHUNK], protocol=pickle.HIGHEST_PROTOCOL)
        for n in range(0, len(records), LOAD_CHUNK)
    ]


def _send(outbox: queue.Queue[object], channel: Connection) -> None:  # pragma: no cover (reader process)
    try:
        while (message := outbox.get()) is not None:
            if isinstance(message, tuple) and message[2] is not None:
                message = (message[0], message[1], chunked(message[2]), message[3])
            channel.send(message)
    except OSError:  # the follower went away: nothing more to send
        return


def main() -> None:  # pragma: no cover (the reader process's entry point)
    channel = Connection(int(sys.argv[1]), readable=False)
    job = pickle.load(sys.stdin.buffer)  # noqa: S301 (written by the follower that started this process)
    run(job, channel)


class Reader:
    """The follower's side of a reader process started at position `start` (or at `begin`)."""

    def __init__(
        self,
        spec: ReaderSpec,
        start: int | None,
        batch: int,
        keys: frozenset[str] | None,
        chain: str | None = None,
        sized: frozenset[str] = frozenset(),
        stated: Stated | None = None,
        load: Callable[[int, int], Sequence[Notification]] | None = None,
    ) -> None:
        """`start` None: the process starts (its imports take a few hundred milliseconds) and waits for
        `begin` to say where from. `stated`: the topics whose states the follower needs (None: all; then
        `load` reads the others again from the event store, when a fallback needs them)."""
        self.batch = batch
        self._load = load
        self._job = (spec, batch, keys, sized, None if load is None else stated)
        self.expected = -1 if start is None else start  # the position the next batch starts at
        self.finished = False  # the last batch came back short: the reader has stopped
        # A plain child interpreter (not multiprocessing's spawn, which imports the parent's main
        # module again: the whole server), with a pipe for the batches; the job goes in on stdin.
        incoming, outgoing = os.pipe()
        root = str(Path(__file__).resolve().parent.parent)
        environ = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
        try:
            self._process = subprocess.Popen(  # noqa: S603 (this interpreter, this module)
                [sys.executable, "-m", "projections.pipeline", str(outgoing)],
                stdin=subprocess.PIPE,
                pass_fds=(outgoing,),
                cwd=root,
                env=environ,
            )
        finally:
            os.close(outgoing)
        self._channel = Connection(incoming, writable=False)
        if start is not None:
            self.begin(start, chain)
        # Batches loaded by a thread of their own, one ahead of `take` (a failure's message last).
        self._ready: queue.Queue[tuple[int, Sequence[Notification], list[RawEvent] | None] | str] = queue.Queue(1)
        self._closed = threading.Event()
        self._receiver = threading.Thread(target=self._receive_all, name="sk-reader-receive", daemon=True)
        self._receiver.start()

    def begin(self, start: int, chain: str | None) -> None:
        """Where the process reads from: `start`, linking the audit chain on from `chain`."""
        spec, batch, keys, sized, stated = self._job
        self.expected = start
        assert self._process.stdin is not None
        with self._process.stdin as job:
            job.write(pickle.dumps(Job(spec, start, batch, keys, chain, sized, stated)))

    def take(self) -> tuple[Sequence[Notification], list[RawEvent] | None] | None:
        """The next batch: its notifications and, if they all parsed, the parsed events. None: the
        reader failed or went away (the caller reads the batch itself)."""
        while True:
            try:
                item = self._ready.get(timeout=POLL)
                break
            except queue.Empty:
                if not self._receiver.is_alive() and self._ready.empty():  # pragma: no cover (it posts before it ends)
                    return None
        if isinstance(item, str):
            log.warning("%s", item)
            return None
        start, notifications, parsed = item
        if start != self.expected:  # pragma: no cover (the reader sends its batches in order)
            raise RuntimeError(f"reader batch from {start}, expected {self.expected}")
        if notifications:
            self.expected = ids_of(notifications)[-1] + 1
        self.finished = len(notifications) < self.batch
        return notifications, parsed

    def _receive_all(self) -> None:
        """The receiving thread: each batch loaded and made into notifications and parsed events while
        the follower writes the one before (its waits on PostgreSQL let go of the interpreter), one
        batch ahead at most; a message that says why, when the reader stopped or failed."""
        while True:
            item = self._next()
            while not self._closed.is_set():
                try:
                    self._ready.put(item, timeout=POLL)
                    break
                except queue.Full:
                    continue
            if isinstance(item, str) or self._closed.is_set():
                return

    def _next(self) -> tuple[int, Sequence[Notification], list[RawEvent] | None] | str:
        try:
            while not self._channel.poll(POLL):
                if self._closed.is_set():
                    return "the reader process was closed"
                if self._process.poll() is not None and not self._channel.poll(0):
                    raise EOFError
            message = self._receive()
        except (EOFError, OSError):
            return f"the reader process stopped (exit code {self._process.poll()})"
        if isinstance(message, str):
            return f"the reader process failed: {message}"
        start, sent, chunks, clean = message
        with no_cycle_collection():
            notifications, parsed = unchunked(sent, chunks, _let_go, self._load, clean)
        return start, notifications, parsed

    def _receive(self) -> Any:
        # Loading a batch makes tens of thousands of objects, and none of them in a cycle: the cycle
        # collector would pass over them again and again while they load (as long as the load itself).
        with no_cycle_collection():
            return self._channel.recv()

    def close(self) -> None:
        """Stop the reader (it only reads: stopping it anywhere loses nothing)."""
        self._closed.set()
        if self._process.poll() is None:
            self._process.terminate()
        if self._process.stdin is not None and not self._process.stdin.closed:  # (never begun)
            self._process.stdin.close()
        try:
            self._process.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            log.warning("the reader process did not stop in %.0f s; killed", STOP_WAIT)
            self._process.kill()
            self._process.wait()
        # The receiving thread sees the pipe's end (or the flag) within a poll.
        self._receiver.join(STOP_WAIT)
        self._channel.close()


if __name__ == "__main__":
    main()
