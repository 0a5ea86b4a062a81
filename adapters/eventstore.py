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

A transaction is one statement: a function in the database (created with the tables) takes the
table lock, notifies listeners and inserts, the same steps and rows as the library's pipelined
transaction (BEGIN, SET LOCAL lock_timeout, LOCK, NOTIFY, INSERT, COMMIT), in one round trip
instead of two and without the client building six statements. The library's own database
function is not used: it inserts without the table lock, so ids could commit out of order. Where
the function is missing (tables not created by this process), the library's transaction is used.
The reads of one aggregate's events render their statement once per shape instead of per call.
The four arrays are encoded here in PostgreSQL's binary array form (their element types are fixed):
psycopg would inspect each list's elements to choose a dumper on every write (about 40 us of a
write's client CPU, against 15 us encoded here).
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.sql import SQL, Composed, Identifier, Literal

# The library's insert without its retry loop: an insert is tried once (domain/outage.py).
_insert_once = PostgresApplicationRecorder.insert_events.__wrapped__


class _Encoded:
    """A one-dimensional array already in PostgreSQL's binary form (array_send): sent as it is.

    psycopg finds the dumper of a list parameter by looking at its elements on every call (four
    arrays a write: about a tenth of a command's own CPU); the four arrays of a write have fixed
    element types, so they are encoded here directly."""

    __slots__ = ("data",)
    oid = 0

    def __init__(self, data: bytes) -> None:
        self.data = data


class _UuidArray(_Encoded):
    oid = 2951  # uuid[]


class _Int8Array(_Encoded):
    oid = 1016  # bigint[]


class _TextArray(_Encoded):
    oid = 1009  # text[]


class _ByteaArray(_Encoded):
    oid = 1001  # bytea[]


_ELEMENT_OIDS = {_UuidArray: 2950, _Int8Array: 20, _TextArray: 25, _ByteaArray: 17}
_HEADER = struct.Struct("!iiIii")
_LENGTH = struct.Struct("!i")
_INT8 = struct.Struct("!iq")


def encode_array(kind: type[_Encoded], items: Sequence[bytes]) -> _Encoded:
    """`items` (each element's binary form, none of them NULL) as a binary array of `kind`."""
    header = _HEADER.pack(1, 0, _ELEMENT_OIDS[kind], len(items), 1)
    return kind(header + b"".join(_LENGTH.pack(len(item)) + item for item in items))


def _int8s(values: Iterable[int]) -> bytes:
    """Each value as an array element: its length (8) and its big-endian bytes."""
    return b"".join(_INT8.pack(8, value) for value in values)


class _EncodedDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj.data  # type: ignore[no-any-return]


def _dumper(kind: type[_Encoded]) -> type[Dumper]:
    return type(f"{kind.__name__}Dumper", (_EncodedDumper,), {"oid": kind.oid})


_DUMPERS = [(kind, _dumper(kind)) for kind in _ELEMENT_OIDS]


def _with_dumpers(conn: psycopg.Connection[Any]) -> None:
    """Teach a connection the encoded arrays (once per connection)."""
    if not getattr(conn, "_sk_encoded_arrays", False):
        for kind, dumper in _DUMPERS:
            conn.adapters.register_dumper(kind, dumper)
        conn._sk_encoded_arrays = True  # type: ignore[attr-defined]


def _columns(stored_events: Sequence[StoredEvent], lock_timeout: str) -> tuple[Any, ...]:
    """The insert function's arguments: the events as four binary arrays, one per column."""
    count = len(stored_events)
    ids = encode_array(_UuidArray, [_uuid_bytes(e.originator_id) for e in stored_events])
    versions = _Int8Array(_HEADER.pack(1, 0, 20, count, 1) + _int8s(int(e.originator_version) for e in stored_events))
    topics = encode_array(_TextArray, [e.topic.encode() for e in stored_events])
    states = encode_array(_ByteaArray, [bytes(e.state) for e in stored_events])
    return ids, versions, topics, states, lock_timeout


def _uuid_bytes(value: UUID | str) -> bytes:
    return value.bytes if isinstance(value, UUID) else UUID(str(value)).bytes


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
        self._function_name = f"sk_insert_{self.events_table_name}"
        self._one_statement: bool | None = None  # whether the function exists (asked once)
        self._selects: dict[tuple[bool, bool, bool, bool], str] = {}
        self._call: str | None = None
        if len(self._function_name) <= self.MAX_IDENTIFIER_LEN:
            self.sql_create_statements.append(self._create_function_statement())

    def _create_function_statement(self) -> Composed:
        # The events come as four arrays, one per column, sent in binary: cheaper for the client to
        # encode than an array of the composite type (text, each bytea escaped). unnest() zips
        # them in order, so the ids come back in the order of the events, as from the library.
        return SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}("
            "ids {id_type}[], versions bigint[], topics text[], states bytea[], lock_timeout text) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
            "BEGIN "
            "PERFORM set_config('lock_timeout', lock_timeout, true); "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(ids, versions, topics, states) "
            "RETURNING notification_id; "
            "END; $BODY$"
        ).format(
            schema=Identifier(self.datastore.schema),
            function=Identifier(self._function_name),
            id_type=Identifier(self.datastore.originator_id_type),
            table=Identifier(self.events_table_name),
            channel=Identifier(self.channel_name),
        )

    def _has_function(self) -> bool:
        if self._one_statement is None:
            signature = SQL("{schema}.{function}({id_type}[], bigint[], text[], bytea[], text)").format(
                schema=Identifier(self.datastore.schema),
                function=Identifier(self._function_name),
                id_type=Identifier(self.datastore.originator_id_type),
            )
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(
                    SQL("SELECT to_regprocedure({0}) IS NOT NULL AS found").format(Literal(signature.as_string(conn)))
                )
                row = curs.fetchone()
                self._one_statement = bool(row and row["found"])
        return self._one_statement

    def _insert(self, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None:
        """One transaction of these events: one statement (the function), or the library's way."""
        if not self._has_function():
            return _insert_once(self, stored_events)  # type: ignore[no-any-return]
        columns = _columns(stored_events, f"{self.datastore.lock_timeout}s")
        with self.datastore.get_connection() as conn:
            assert conn.autocommit  # the statement is its own transaction: committed when it returns
            _with_dumpers(conn)  # before the cursor: a cursor copies its connection's adapters
            if self._call is None:
                self._call = (
                    SQL("SELECT * FROM {schema}.{function}(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[], %s)")
                    .format(
                        schema=Identifier(self.datastore.schema),
                        function=Identifier(self._function_name),
                        id_type=Identifier(self.datastore.originator_id_type),
                    )
                    .as_string(conn)
                )
            with conn.cursor() as curs:
                curs.execute(self._call, columns, prepare=True)
                return [row[self._function_name] for row in curs.fetchall()]

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        # The library's query, rendered once per shape (it composes it anew on every call).
        shape = (gt is not None, lte is not None, desc, limit is not None)
        params: list[Any] = [originator_id]
        params.extend(value for value in (gt, lte, limit) if value is not None)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            statement = self._selects.get(shape)
            if statement is None:
                composed = self.select_events_statement
                if gt is not None:
                    composed += SQL(" AND originator_version > %s")
                if lte is not None:
                    composed += SQL(" AND originator_version <= %s")
                composed += SQL(" ORDER BY originator_version DESC" if desc else " ORDER BY originator_version ASC")
                if limit is not None:
                    composed += SQL(" LIMIT %s")
                statement = composed.as_string(conn)
                self._selects[shape] = statement
            curs.execute(statement, params, prepare=True)
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

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
            ids = self._insert(events)
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
            write.settle(ids=self._insert(write.events))
        except BaseException as error:
            write.settle(error=error)
