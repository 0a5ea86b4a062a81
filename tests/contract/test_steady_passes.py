"""Issue 15: a steady pass of the projection follower (a few events after its own last batch) reads
neither the audit chain's head nor the stage ids again (the audit projection keeps them from its last
batch), and writes a service's row once a batch however many of its events the batch holds. Every row
stays what an application from scratch makes: after rollbacks, failed batches applied event by event
(with an event quarantined), a reset by another party and another follower taking turns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime, projections
from domain.errors import UnavailableError
from projections.chain import link as original_link
from projections.follower import ProjectionFollower
from projections.quarantine import quarantined
from projections.services import ServicesProjection
from projections.store import Cursor, ReadStore
from projections.verify import verify
from tests.support import ROOT_POOL, runtime_for, stages


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    if database_url == "memory://":
        pytest.skip("the same read store on SQLite")
    runtime = runtime_for(database_url)
    yield runtime
    runtime.close()


class Recording:
    """A read store whose transactions' statements are recorded."""

    def __init__(self, store: ReadStore) -> None:
        self.store = store
        self.dialect = store.dialect
        self.statements: list[str] = []

    @contextmanager
    def transaction(self, relaxed: bool = False) -> Iterator[Cursor]:
        statements = self.statements
        with self.store.transaction(relaxed=relaxed) as cursor:

            class Recorded:
                def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
                    statements.append(sql)
                    cursor.execute(sql, params)

                def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
                    statements.append(sql)
                    cursor.executemany(sql, params)

                def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
                    statements.append(f"COPY {table}")
                    cursor.copy_rows(table, columns, rows)

                def fetchall(self) -> list[dict[str, Any]]:
                    return cursor.fetchall()

                def fetchone(self) -> dict[str, Any] | None:
                    return cursor.fetchone()

            yield Recorded()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def contents(runtime: Runtime) -> dict[str, list[str]]:
    tables = sorted({t for p in runtime.projections for t in p.tables})
    return {t: sorted(repr(sorted(r.items())) for r in runtime.store.query(f"SELECT * FROM {t}")) for t in tables}  # noqa: S608


def from_scratch(runtime: Runtime) -> dict[str, list[str]]:
    """The read models as new projections (nothing kept) apply the whole log, then put back as they were."""
    found = contents(runtime)
    with runtime.store.transaction() as cursor:
        for projection in runtime.projections:
            for table in projection.tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
        cursor.execute("UPDATE sk_tracking SET position = 0")
        cursor.execute("DELETE FROM sk_quarantine")
    ProjectionFollower(runtime.app, runtime.store, projections(runtime.app)).catch_up()
    rebuilt = contents(runtime)
    assert found == rebuilt
    return rebuilt


def changes(runtime: Runtime, service_id: UUID, n: int) -> None:
    """Stage ids and the services row change: adds, renames (one back to an earlier name), removals."""
    app = runtime.app
    app.update_service(service_id, f"d{n}", actor="a", name=f"svc {str(service_id)[:8]} {n}")
    app.add_stage(
        service_id, {"name": f"s{n}", "resource_pool": f"{ROOT_POOL}/{str(service_id)[:8]}-s{n}"}, 0, actor="a"
    )
    app.update_stage(service_id, f"s{n}", {"name": f"t{n}", "restricted": True}, actor="a")
    app.update_service(service_id, f"e{n}", actor="a")
    if n % 2 == 0:
        app.remove_stage(service_id, f"t{n - 1}", actor="a")
        app.update_stage(service_id, f"t{n}", {"name": f"t{n - 1}"}, actor="a")


def test_a_steady_pass_reads_neither_the_chain_head_nor_the_stage_ids(runtime: Runtime) -> None:
    service = runtime.app.register_service("payroll", "", stages("int", "prod"), actor="a").value
    store = Recording(runtime.store)
    follower = ProjectionFollower(runtime.app, store, runtime.projections)
    follower.catch_up()
    assert any("FROM sk_audit ORDER BY" in s for s in store.statements)  # the first pass reads them
    for n in range(3):
        store.statements.clear()
        for m in range(4):
            runtime.app.update_service(service.id, f"v{n}.{m}", actor="a")
        assert follower.catch_up() == 4
        assert not [s for s in store.statements if "sk_audit_stages" in s or "FROM sk_audit ORDER BY" in s]
        updates = [s for s in store.statements if s.startswith("UPDATE sk_services")]
        assert len(updates) == 1  # one statement for the service's four events
    assert verify(runtime.app, runtime.store).ok
    from_scratch(runtime)


def test_batches_of_many_changes_of_a_service_equal_an_application_from_scratch(runtime: Runtime) -> None:
    services = [
        runtime.app.register_service(f"svc{s}", "", stages("int", "prod", pools=f"p{s}-"), actor="a").value.id
        for s in range(2)
    ]
    follower = ProjectionFollower(runtime.app, runtime.store, runtime.projections)
    follower.catch_up()
    for n in range(1, 5):
        for service_id in services:
            changes(runtime, service_id, n)
        runtime.app.reorder_stages(
            services[0], [s["name"] for s in reversed(runtime.app.service(services[0]).stages)], actor="a"
        )
        follower.catch_up()
    assert verify(runtime.app, runtime.store).ok
    from_scratch(runtime)


def test_a_failed_batch_and_a_quarantined_event_leave_the_chain_and_ids_right(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch another read model fails is rolled back and applied event by event; an event the audit
    log cannot apply is quarantined: the next batches link on from the rows committed, not from what
    the audit projection computed in the rolled-back batch or for the quarantined event."""
    service_id = runtime.app.register_service("payroll", "", stages("int"), actor="a").value.id
    follower = ProjectionFollower(runtime.app, runtime.store, runtime.projections)
    follower.catch_up()
    changes(runtime, service_id, 1)
    [services] = [p for p in runtime.projections if isinstance(p, ServicesProjection)]
    topic = "stagekeeper:Service.DescriptionChanged"
    original_description = services.handlers[topic]
    refused: list[int] = []

    def description_changed(event: Any, position: int, cursor: Cursor) -> None:
        if event.description == "e1":
            refused.append(position)
            raise RuntimeError("the services read model cannot apply this one")
        original_description(event, position, cursor)

    monkeypatch.setitem(services.handlers, topic, description_changed)
    follower._dispatch.clear()
    follower.catch_up()
    assert len(refused) == 2  # in the batch (after the audit log's rows), then alone
    assert [(q["projection"], q["position"]) for q in quarantined(runtime.store)] == [("services", refused[0])]
    monkeypatch.setitem(services.handlers, topic, original_description)
    follower._dispatch.clear()

    # The audit log itself quarantines an event (applied alone, after its batch failed).
    changes(runtime, service_id, 2)
    bad = runtime.app.head() - 1

    def bad_link(previous: str, notification: Any) -> str:
        if notification.id == bad:
            raise RuntimeError("the audit log cannot apply this one")
        return original_link(previous, notification)

    monkeypatch.setattr("projections.audit.link", bad_link)
    follower.catch_up()
    monkeypatch.setattr("projections.audit.link", original_link)
    assert ("audit", bad) in {(q["projection"], q["position"]) for q in quarantined(runtime.store)}
    for n in range(3, 5):
        changes(runtime, service_id, n)
        follower.catch_up()
    verdict = verify(runtime.app, runtime.store)
    assert verdict.ok, verdict.describe()
    assert verdict.quarantined == (bad,)


def test_a_reset_and_another_follower_are_found(runtime: Runtime) -> None:
    """Another party resets the read models, or another follower (another process: its own projections)
    applies batches in between: the kept head and ids are not used, and every row stays right."""
    service_id = runtime.app.register_service("payroll", "", stages("int"), actor="a").value.id
    mine = ProjectionFollower(runtime.app, runtime.store, runtime.projections)
    other = ProjectionFollower(runtime.app, runtime.store, projections(runtime.app))
    mine.catch_up()
    for n in range(1, 7):
        changes(runtime, service_id, n)
        if n % 3 == 0:
            # A reset (a rebuild by another process), then the other follower catches up part of the way.
            with runtime.store.transaction() as cursor:
                for projection in runtime.projections:
                    for table in projection.tables:
                        cursor.execute(f"DELETE FROM {table}")  # noqa: S608
                cursor.execute("UPDATE sk_tracking SET position = 0")
            other.catch_up(until=runtime.app.head() - 2)
        elif n % 3 == 1:
            other.catch_up()
        mine.catch_up()
        runtime.app.update_service(service_id, f"after {n}", actor="a")
        (other if n % 2 else mine).catch_up()
    mine.catch_up()
    other.catch_up()
    assert verify(runtime.app, runtime.store).ok
    from_scratch(runtime)


def test_what_a_rolled_back_batch_computed_is_not_used_after_another_follower_committed_that_range(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This follower's batch rolls back (the database failed at its end) after the audit log computed its
    rows; another follower then commits the same range, but with an event the audit log quarantined there
    (a failure that did not repeat here). This follower's next batch starts right after that range: the
    chain links on from the rows committed, not from the head this follower computed and rolled back."""
    service_id = runtime.app.register_service("payroll", "", stages("int"), actor="a").value.id
    mine = ProjectionFollower(runtime.app, runtime.store, runtime.projections)
    other = ProjectionFollower(runtime.app, runtime.store, projections(runtime.app))
    mine.catch_up()
    changes(runtime, service_id, 1)
    bad = runtime.app.head() - 1

    def failing_trackings(*_: Any) -> None:
        raise UnavailableError("the read store went away at the end of the batch")

    monkeypatch.setattr("projections.follower.set_trackings", failing_trackings)
    with pytest.raises(UnavailableError):
        mine.catch_up()
    monkeypatch.undo()

    def bad_link(previous: str, notification: Any) -> str:
        if notification.id == bad:
            raise RuntimeError("the audit log cannot apply this one (in that process only)")
        return original_link(previous, notification)

    monkeypatch.setattr("projections.audit.link", bad_link)
    other.catch_up()
    monkeypatch.undo()
    assert ("audit", bad) in {(q["projection"], q["position"]) for q in quarantined(runtime.store)}

    runtime.app.update_service(service_id, "after the other follower", actor="a")
    mine.catch_up()
    verdict = verify(runtime.app, runtime.store)
    assert verdict.ok, verdict.describe()
    assert verdict.quarantined == (bad,)
