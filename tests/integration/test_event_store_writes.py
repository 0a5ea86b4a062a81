"""The event store's write on PostgreSQL (adapters/eventstore.py): one statement, the same rows and
the same guarantees as the library's transaction (table lock, lock timeout, uniqueness)."""

from __future__ import annotations

import threading
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from adapters.eventstore import GroupCommitRecorder, _insert_once
from adapters.runtime import Runtime
from domain.errors import UnavailableError
from tests.support import POSTGRES_CONNINFO, runtime_for, stages


def _recorder(runtime: Runtime) -> GroupCommitRecorder:
    recorder = runtime.app.recorder.wrapped  # type: ignore[attr-defined]
    assert isinstance(recorder, GroupCommitRecorder)
    return recorder


def _schema(runtime: Runtime) -> str:
    return str(_recorder(runtime).datastore.schema)


def _rows(runtime: Runtime, originator_id: UUID) -> list[tuple[object, ...]]:
    with psycopg.connect(POSTGRES_CONNINFO) as conn:
        return conn.execute(
            f"SELECT originator_version, topic, state FROM {_schema(runtime)}.stagekeeper_events "  # noqa: S608
            "WHERE originator_id = %s ORDER BY originator_version",
            (originator_id,),
        ).fetchall()


def _events(originator_id: UUID) -> list[StoredEvent]:
    return [
        StoredEvent(originator_id=originator_id, originator_version=v, topic="test:Event", state=f"state {v}".encode())
        for v in (1, 2, 3)
    ]


def test_a_write_is_one_statement_that_stores_what_the_library_would(postgres_url: str) -> None:
    runtime = runtime_for(postgres_url)
    try:
        recorder = _recorder(runtime)
        ours, library = uuid4(), uuid4()
        ids = recorder.insert_events(_events(ours))
        library_ids = _insert_once(recorder, _events(library))
        assert recorder._one_statement is True  # the function exists and was used
        assert ids is not None
        assert library_ids is not None
        assert len(ids) == 3
        assert list(ids) == sorted(ids)
        assert max(ids) < min(library_ids)
        assert _rows(runtime, ours) == _rows(runtime, library)
        assert [e.state for e in recorder.select_events(ours)] == [b"state 1", b"state 2", b"state 3"]
        with pytest.raises(IntegrityError):  # the same versions again: a lost race
            recorder.insert_events(_events(ours)[2:])
    finally:
        runtime.close()


def test_the_binary_arrays_store_any_value_as_the_library_does(postgres_url: str) -> None:
    """The events go as arrays encoded here (not by psycopg): awkward values land byte for byte."""
    runtime = runtime_for(postgres_url)
    try:
        recorder = _recorder(runtime)
        ours, library = uuid4(), uuid4()

        def awkward(originator_id: UUID | str) -> list[StoredEvent]:
            values = [(1, "test:Événement ⚙", b""), (2, "t", bytes(range(256)) * 40), (2**40, "x:\u00e9", b"\x00{}")]
            return [
                StoredEvent(originator_id=originator_id, originator_version=v, topic=t, state=s) for v, t, s in values
            ]

        ids = recorder.insert_events(awkward(str(ours)))  # an id given as text is written as the UUID
        _insert_once(recorder, awkward(library))
        assert ids is not None
        assert len(ids) == 3
        assert _rows(runtime, ours) == _rows(runtime, library)
        assert [(e.originator_version, e.topic, e.state) for e in recorder.select_events(ours)] == [
            (e.originator_version, e.topic, e.state) for e in awkward(ours)
        ]
    finally:
        runtime.close()


def test_a_write_takes_the_table_lock_that_orders_notification_ids(postgres_url: str) -> None:
    # A plain INSERT (ROW EXCLUSIVE) would not wait for another ROW EXCLUSIVE holder; the write
    # must, because it locks the table in EXCLUSIVE mode so ids commit in the order issued.
    runtime = runtime_for(postgres_url, unavailable_seconds=60)
    try:
        service_id = runtime.app.register_service("s", "", stages("int"), actor="a").value.id
        done = threading.Event()

        def update() -> None:
            runtime.app.update_service(service_id, "changed", actor="a")
            done.set()

        with psycopg.connect(POSTGRES_CONNINFO) as conn:
            conn.execute(f"LOCK TABLE {_schema(runtime)}.stagekeeper_events IN ROW EXCLUSIVE MODE")
            thread = threading.Thread(target=update)
            thread.start()
            assert not done.wait(1.0)
            conn.commit()
        thread.join(20)
        assert done.is_set()
        assert runtime.app.service(service_id).description == "changed"
    finally:
        runtime.close()


def test_a_write_gives_up_after_the_lock_timeout(postgres_url: str) -> None:
    runtime = runtime_for(postgres_url, unavailable_seconds=2)  # lock timeout 1 s
    try:
        service_id = runtime.app.register_service("s", "", stages("int"), actor="a").value.id
        outcome: list[BaseException | None] = []

        def update() -> None:
            try:
                runtime.app.update_service(service_id, "changed", actor="a")
                outcome.append(None)
            except BaseException as error:  # the test asserts on it
                outcome.append(error)

        with psycopg.connect(POSTGRES_CONNINFO) as conn:
            conn.execute(f"LOCK TABLE {_schema(runtime)}.stagekeeper_events IN EXCLUSIVE MODE")
            thread = threading.Thread(target=update)
            thread.start()
            thread.join(15)
            gave_up = not thread.is_alive()
            conn.commit()  # (a write still waiting goes through now)
        thread.join(20)
        assert gave_up, "the write waited for the lock past its timeout"
        assert len(outcome) == 1
        assert isinstance(outcome[0], UnavailableError)
        assert runtime.app.service(service_id).description == ""
    finally:
        runtime.close()


def test_without_the_function_writes_go_the_library_way(postgres_url: str) -> None:
    runtime = runtime_for(postgres_url)
    try:
        recorder = _recorder(runtime)
        with psycopg.connect(POSTGRES_CONNINFO) as conn:
            conn.execute(f"DROP FUNCTION {_schema(runtime)}.sk_insert_stagekeeper_events")
            conn.commit()
        recorder._one_statement = None  # asked again, as by a process that did not create the tables
        service_id = runtime.app.register_service("s", "", stages("int"), actor="a").value.id
        runtime.app.update_service(service_id, "changed", actor="a")
        assert recorder._one_statement is False
        assert runtime.app.service(service_id).description == "changed"
    finally:
        runtime.close()
