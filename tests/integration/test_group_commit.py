"""Group commit (adapters/eventstore.py): concurrent commands of one process share a transaction.

The test holds the events table's lock from another connection, so the first writer waits inside
its transaction while the others queue behind it; released, the queue is written in one go.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from adapters.eventstore import GroupCommitRecorder
from adapters.runtime import Runtime
from tests.support import POSTGRES_CONNINFO, runtime_for, stages


def _recorder(runtime: Runtime) -> GroupCommitRecorder:
    recorder = runtime.app.recorder.wrapped  # type: ignore[attr-defined]
    assert isinstance(recorder, GroupCommitRecorder)
    return recorder


@contextmanager
def _events_locked(runtime: Runtime) -> Iterator[None]:
    """The events table locked as a writer locks it, until the block ends."""
    schema = runtime.app.recorder.datastore.schema  # type: ignore[attr-defined]
    with psycopg.connect(POSTGRES_CONNINFO) as conn:
        conn.execute(f"LOCK TABLE {schema}.stagekeeper_events IN EXCLUSIVE MODE")
        yield
        conn.commit()


def _run_queued(runtime: Runtime, commands: list[Callable[[], Any]]) -> list[Any]:
    """Run the commands in threads: the first one blocks on the lock, the others queue behind it in order."""
    results: list[Any] = [None] * len(commands)

    def run(i: int) -> None:
        try:
            results[i] = commands[i]()
        except Exception as error:  # the test asserts on it
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(commands))]
    with _events_locked(runtime):
        threads[0].start()
        time.sleep(0.3)  # the first writer is inside its transaction, waiting for the lock
        for i, thread in enumerate(threads[1:], start=1):
            thread.start()  # and queues behind it, in this order
            deadline = time.monotonic() + 20
            while _recorder(runtime).queued() < i and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _recorder(runtime).queued() == i, results
    for thread in threads:
        thread.join(10)
    return results


def _transactions_since(runtime: Runtime, position: int) -> int:
    schema = runtime.app.recorder.datastore.schema  # type: ignore[attr-defined]
    with psycopg.connect(POSTGRES_CONNINFO) as conn:
        row = conn.execute(
            f"SELECT count(DISTINCT xmin::text) FROM {schema}.stagekeeper_events WHERE notification_id > %s",  # noqa: S608
            (position,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_commands_waiting_for_a_write_in_flight_are_saved_in_one_transaction(postgres_url: str) -> None:
    runtime = runtime_for(postgres_url, unavailable_seconds=60)  # the lock is held long on a busy machine
    try:
        ids = [
            runtime.app.register_service(f"s{i}", "", stages("int", pools=f"s{i}-"), actor="a").value.id
            for i in range(6)
        ]
        head = runtime.app.head()
        outcomes = _run_queued(
            runtime,
            [functools.partial(runtime.app.update_service, sid, "changed", actor="a") for sid in ids],
        )
        positions = [outcome.position for outcome in outcomes]
        assert len(set(positions)) == 6  # each command is told its own position
        # The first writer's transaction, then one for the five that queued behind it.
        assert _transactions_since(runtime, head) == 2
        for sid in ids:
            assert runtime.app.service(sid).description == "changed"
        assert runtime.app.head() == max(positions)
    finally:
        runtime.close()


def test_a_race_lost_inside_a_shared_transaction_fails_only_its_loser(postgres_url: str) -> None:
    runtime = runtime_for(postgres_url, unavailable_seconds=60)  # the lock is held long on a busy machine
    try:
        a, b, c = (
            runtime.app.register_service(f"s{i}", "", stages("int", pools=f"s{i}-"), actor="a").value.id
            for i in range(3)
        )
        before = {sid: runtime.app.service(sid).version for sid in (a, b, c)}
        stale = runtime.app.service(b)  # read now: it will lose to the first change of b
        stale.update_description("stale", "a", None)
        outcomes = _run_queued(
            runtime,
            [
                lambda: runtime.app.update_service(a, "first", actor="a"),
                lambda: runtime.app.update_service(b, "queued", actor="a"),
                lambda: runtime.app.save(stale),
                lambda: runtime.app.update_service(c, "queued", actor="a"),
            ],
        )
        assert type(outcomes[2]).__name__ == "IntegrityError"
        assert not any(isinstance(outcome, Exception) for i, outcome in enumerate(outcomes) if i != 2)
        after = {sid: runtime.app.service(sid) for sid in (a, b, c)}
        assert [after[sid].version - before[sid] for sid in (a, b, c)] == [1, 1, 1]
        assert (after[a].description, after[b].description, after[c].description) == ("first", "queued", "queued")
    finally:
        runtime.close()
