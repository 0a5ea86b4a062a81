"""History that is never lost, on PostgreSQL: projections resume exactly, point-in-time reads
are exact, and `audit verify` catches a stored event altered, deleted or inserted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from adapters.runtime import Runtime
from projections.audit import AuditProjection
from projections.audit_queries import AuditFilter
from projections.verify import verify
from tests.support import POSTGRES_CONNINFO, THREE_TIER, machine, postgres_schema, runtime_for, stages


@pytest.fixture
def schema_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture
def runtime(schema_url: str) -> Iterator[Runtime]:
    runtime = runtime_for(schema_url)
    runtime.app.import_templates(None, True, actor="admin")
    yield runtime
    runtime.close()


def history(runtime: Runtime, changes: int = 30) -> tuple[UUID, list[tuple[str, int, dict[str, Any]]]]:
    """Build a configuration history, recording (time, version, definition) after each change."""
    app = runtime.app
    service_id = app.register_service("payroll", "", stages("int", "test"), actor="alice").value.id
    configuration_id = app.create_configuration(
        service_id, "p3", "", [{"name": "front"}], THREE_TIER, actor="alice"
    ).value.id
    seen = []
    for i in range(changes):
        time.sleep(0.002)  # distinct timestamps
        if i % 3 == 0:
            app.change_machine(configuration_id, "web1", machine("web1", cpus=1 + i % 7), actor="bob", reason=f"#{i}")
        elif i % 3 == 1:
            app.add_machine(configuration_id, machine(f"extra{i}"), actor="carol")
        else:
            app.revise_configuration(configuration_id, {"description": f"rev {i}"}, actor="dave")
        current = app.configuration(configuration_id)
        seen.append((datetime.now(UTC).isoformat(), current.version, current.definition()))
    return configuration_id, seen


def test_point_in_time_reads_return_exactly_the_recorded_states(runtime: Runtime) -> None:
    configuration_id, seen = history(runtime)
    runtime.catch_up()
    for when, version, definition in seen:
        assert runtime.app.configuration(configuration_id, version=version).definition() == definition
        at = runtime.audit.configuration_version_at(str(configuration_id), _fixed(when))
        assert at == version, (when, at, version)


def test_a_projection_killed_mid_batch_resumes_without_applying_anything_twice(
    runtime: Runtime, schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    history(runtime, changes=40)
    runtime.projection_follower.batch = 10
    calls = {"n": 0}
    original = AuditProjection.apply_batch

    def dying(self: AuditProjection, notifications: Any, cursor: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            original(self, notifications, cursor)  # rows written inside the transaction...
            raise SystemExit("killed")  # ...then the process dies before it commits
        original(self, notifications, cursor)

    monkeypatch.setattr(AuditProjection, "apply_batch", dying)
    with pytest.raises(SystemExit):
        runtime.projection_follower.catch_up()
    monkeypatch.setattr(AuditProjection, "apply_batch", original)
    runtime.close()
    again = runtime_for(schema_url)
    again.projection_follower.catch_up()
    head = again.app.head()
    [row] = again.store.query("SELECT COUNT(*) AS n, MIN(position) AS lo, MAX(position) AS hi FROM sk_audit")
    assert (row["n"], row["lo"], row["hi"]) == (head, 1, head)
    tables = _tables(again)
    for projection in again.projections:
        again.projection_follower.rebuild(projection.name)
    assert _tables(again) == tables
    assert verify(again.app, again.store).ok
    again.close()


def _tables(runtime: Runtime) -> dict[str, list[dict[str, Any]]]:
    return {
        t: runtime.store.query(f"SELECT * FROM {t} ORDER BY 1, 2")  # noqa: S608
        for p in runtime.projections
        for t in p.tables
    }


def _fixed(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _events_table(schema_url: str) -> str:
    schema = schema_url.split("schema=")[1]
    return f"{schema}.stagekeeper_events"


def test_verify_passes_on_an_untouched_store(runtime: Runtime) -> None:
    history(runtime, changes=5)
    runtime.catch_up()
    verdict = verify(runtime.app, runtime.store)
    assert verdict.ok
    assert verdict.checked == runtime.app.head()


def test_verify_finds_an_altered_event(runtime: Runtime, schema_url: str) -> None:
    history(runtime, changes=5)
    runtime.catch_up()
    with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as conn:
        conn.execute(
            f"UPDATE {_events_table(schema_url)} "  # noqa: S608
            "SET state = convert_to(replace(convert_from(state, 'UTF8'), 'bob', 'eve'), 'UTF8') "
            "WHERE notification_id = (SELECT MIN(notification_id) FROM "
            f"{_events_table(schema_url)} WHERE convert_from(state, 'UTF8') LIKE '%%bob%%')"
        )
        position = conn.execute(
            f"SELECT MIN(notification_id) FROM {_events_table(schema_url)} "  # noqa: S608
            "WHERE convert_from(state, 'UTF8') LIKE '%%eve%%'"
        ).fetchone()
    verdict = verify(runtime.app, runtime.store)
    assert position is not None
    assert (verdict.ok, verdict.problem, verdict.position) == (False, "altered", position[0])


def test_verify_finds_a_deleted_event(runtime: Runtime, schema_url: str) -> None:
    history(runtime, changes=5)
    runtime.catch_up()
    with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {_events_table(schema_url)} WHERE notification_id = 7")  # noqa: S608
    verdict = verify(runtime.app, runtime.store)
    assert (verdict.ok, verdict.problem, verdict.position) == (False, "removed", 7)


def test_verify_finds_an_inserted_event(runtime: Runtime, schema_url: str) -> None:
    history(runtime, changes=3)
    runtime.catch_up()
    table = _events_table(schema_url)
    with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as conn:
        # Leave a gap in the sequence (as a rolled-back write does), then write more history.
        sequence = conn.execute(f"SELECT pg_get_serial_sequence('{table}', 'notification_id')").fetchone()
        assert sequence is not None
        conn.execute("SELECT nextval(%s)", (sequence[0],))
        runtime.app.update_service(runtime.app.configuration(history_id(runtime)).service_id, "later", actor="alice")
        runtime.catch_up()
        gap = conn.execute(
            f"SELECT MAX(notification_id) - 1 FROM {table}"  # noqa: S608
        ).fetchone()
        assert gap is not None
        # A forged event slipped into the gap, as if it had always been there.
        conn.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state, notification_id) "  # noqa: S608
            f"SELECT originator_id, 999, topic, state, %s FROM {table} WHERE notification_id = 1",
            (gap[0],),
        )
    verdict = verify(runtime.app, runtime.store)
    assert (verdict.ok, verdict.problem, verdict.position) == (False, "inserted", gap[0])


def history_id(runtime: Runtime) -> UUID:
    [row] = runtime.store.query("SELECT id FROM sk_configurations LIMIT 1")
    return UUID(row["id"])


def _audit_answers(runtime: Runtime, configuration_id: UUID) -> dict[str, Any]:
    """Every shape of audit answer: pages (filters, a type prefix, a time window), an export's stream, a
    configuration's history, its version at a time, and the services known at a time (a join with the
    subjects)."""
    audit = runtime.audit
    rows = runtime.store.query("SELECT at, service_id FROM sk_audit WHERE service_id IS NOT NULL ORDER BY position")
    middle, service_id = rows[len(rows) // 2]["at"], rows[0]["service_id"]
    pages = {
        "all": AuditFilter(include_system=True),
        "service": AuditFilter(service_id=service_id),
        "prefix": AuditFilter(event_type="Configuration."),
        "type": AuditFilter(event_type="Configuration.MachineChanged"),
        "actor": AuditFilter(actor="bob"),
        "configuration": AuditFilter(configuration_id=str(configuration_id)),
        "window": AuditFilter(service_id=service_id, since=middle, until="9999"),
        "until": AuditFilter(until=middle),
    }
    return {
        **{label: audit.page(filters, None, 7) for label, filters in pages.items()},
        "stream": list(audit.stream(AuditFilter(since=middle))),
        "history": audit.history(str(configuration_id)),
        "version_at": audit.configuration_version_at(str(configuration_id), middle),
        "aggregate_version_at": audit.aggregate_version_at(str(configuration_id), middle),
        "services_known_at": audit.services_known_at(middle),
    }


def _collations(runtime: Runtime) -> dict[str, str | None]:
    rows = runtime.store.query(
        "SELECT a.attname AS name, c.collname AS collation FROM pg_attribute a "
        "LEFT JOIN pg_collation c ON c.oid = a.attcollation AND a.attcollation <> 0 "
        "WHERE a.attrelid = 'sk_audit'::regclass AND a.attnum > 0 AND NOT a.attisdropped"
    )
    return {str(r["name"]): r["collation"] for r in rows}


def test_an_audit_log_of_schema_version_3_is_rebuilt_bytewise_with_the_same_answers(schema_url: str) -> None:
    first = runtime_for(schema_url)
    try:
        first.app.import_templates(None, True, actor="admin")
        configuration_id, _ = history(first, changes=12)
        first.catch_up()
        # The read model as version 3 built it: its text columns in the database's collation, and an index
        # version 4 no longer has.
        with first.store.transaction() as cursor:
            cursor.execute("CREATE INDEX sk_audit_service_at ON sk_audit (service_id, at)")
            for name, collation in _collations(first).items():
                if collation == "C":
                    cursor.execute(f'ALTER TABLE sk_audit ALTER COLUMN {name} TYPE TEXT COLLATE "default"')
            cursor.execute('ALTER TABLE sk_audit_subjects ALTER COLUMN aggregate_id TYPE TEXT COLLATE "default"')
            cursor.execute("UPDATE sk_schema SET version = 3 WHERE name = 'audit'")
        assert set(_collations(first).values()) == {None, "default"}
        before = _audit_answers(first, configuration_id)
    finally:
        first.close()

    second = runtime_for(schema_url)  # a new release's start-up: version 3 -> 4, dropped and rebuilt
    try:
        assert second.store.query("SELECT COUNT(*) AS n FROM sk_audit")[0]["n"] == 0
        second.catch_up()
        collations = _collations(second)
        assert {name for name, collation in collations.items() if collation == "C"} == {
            "at", "actor", "service_id", "stage", "from_stage", "stage_id", "from_stage_id", "configuration_id",
            "deployment_id", "aggregate_id", "event_type",
        }  # fmt: skip
        assert _audit_answers(second, configuration_id) == before
        rows = second.store.query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'sk_audit'"
        )
        indexes = {r["indexname"] for r in rows}
        assert "sk_audit_service_at" not in indexes  # version 3's, gone with its table
        assert "sk_audit_service" in indexes
        assert second.store.query("SELECT version FROM sk_schema WHERE name = 'audit'") == [
            {"version": AuditProjection.schema_version}
        ]
    finally:
        second.close()


def test_an_audit_log_of_schema_version_4_is_rebuilt_with_its_late_rows(schema_url: str) -> None:
    """Version 4 kept no late rows (sk_audit_late): a store of it rebuilds its audit log at start-up, and
    the rows marked late and every answer are those of an audit log built by version 5."""
    first = runtime_for(schema_url)
    try:
        first.app.import_templates(None, True, actor="admin")
        configuration_id, _ = history(first, changes=6)
        # Events made long before they were stored (late), then more history after them.
        made = json.dumps({"timestamp": {"_type_": "datetime_iso", "_data_": "2020-01-01T00:00:00.000000+00:00"}})
        first.app.recorder.insert_events(
            [StoredEvent(uuid4(), 1, "stagekeeper:Probe.Ping", made.encode()) for _ in range(3)]
        )
        first.app.register_service("hr", "", stages("int", pools="hr-"), actor="alice")
        first.catch_up()
        marks = first.store.query("SELECT * FROM sk_audit_late ORDER BY position")
        assert [r["at"][:4] for r in marks] == ["2020"] * 3
        old = AuditFilter(since="2019", until="2021", include_system=True)
        before = {**_audit_answers(first, configuration_id), "old": first.audit.page(old, None, 7)}
        assert len(before["old"][0]) == 3
        with first.store.transaction() as cursor:  # the read model as version 4 left it
            cursor.execute("DROP TABLE sk_audit_late")
            cursor.execute("UPDATE sk_schema SET version = 4 WHERE name = 'audit'")
    finally:
        first.close()

    second = runtime_for(schema_url)  # a new release's start-up: version 4 -> 5, dropped and rebuilt
    try:
        assert second.store.query("SELECT COUNT(*) AS n FROM sk_audit_late")[0]["n"] == 0
        second.catch_up()
        assert second.store.query("SELECT * FROM sk_audit_late ORDER BY position") == marks
        assert {**_audit_answers(second, configuration_id), "old": second.audit.page(old, None, 7)} == before
        assert second.store.query("SELECT version FROM sk_schema WHERE name = 'audit'") == [{"version": 5}]
    finally:
        second.close()
