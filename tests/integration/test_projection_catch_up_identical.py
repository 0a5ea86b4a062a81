"""Issue 15: a batched catch-up (bulk COPY, the faster tag parsing and NUL escaping, a build from
zero without indexes) leaves every read model byte-identical to an event-by-event application, on
SQLite and PostgreSQL; a catch-up that dies half-way leaves positions and rows consistent."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import Notification, StoredEvent

from adapters.runtime import Runtime
from domain.errors import UnavailableError
from projections import chain, pipeline
from projections.base import iso
from projections.follower import ProjectionFollower
from projections.quarantine import quarantined
from projections.raw import RawEvent
from tests.support import THREE_TIER, machine, postgres_schema, runtime_for, stages


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/stagekeeper.db"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    runtime = runtime_for(database_url)
    runtime.app.import_templates(None, True, actor="admin")
    yield runtime
    runtime.close()


def history(runtime: Runtime) -> None:
    """Services, stages, grants, configurations with many versions, and deployments: every read model gets rows."""
    app = runtime.app
    for s in range(3):
        service_id = app.register_service(
            f"svc{s}", "first", stages("int", "test", pools=f"s{s}-"), actor="alice"
        ).value.id
        app.update_service(service_id, f"described {s}", actor="bob", reason="why\tnot", name=f"service {s}")
        app.add_stage(service_id, {"name": "prod", "resource_pool": f"/DC0/host/DC0_C0/Resources/p{s}"}, None, "bob")
        app.grant_role(service_id, "viewer", f"user{s}", None, None, actor="alice")
        configuration_id = app.create_configuration(
            service_id, "c", "", [{"name": "front"}], THREE_TIER, actor="alice"
        ).value.id
        for i in range(25):
            if i % 3 == 0:
                app.change_machine(
                    configuration_id, "web1", machine("web1", cpus=1 + i % 7), actor="bob", reason=f"#{i}"
                )
            elif i % 3 == 1:
                app.add_machine(configuration_id, machine(f"extra{i}"), actor="carol")
            else:
                app.revise_configuration(configuration_id, {"description": f"rev {i} é ✓"}, actor="dave")
        app.deploy(configuration_id, "int", actor="erin", reason="first")


def contents(runtime: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    tables = sorted({t for p in runtime.projections for t in p.tables})
    found = {}
    for table in tables:
        rows = runtime.store.query(f"SELECT * FROM {table}")  # noqa: S608
        found[table] = sorted((tuple(sorted((k, repr(v)) for k, v in r.items())) for r in rows), key=repr)
    return found


def reset(runtime: Runtime) -> None:
    with runtime.store.transaction() as cursor:
        for projection in runtime.projections:
            for table in projection.tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
            cursor.execute("UPDATE sk_tracking SET position = 0 WHERE name = %s", (projection.name,))


def test_batched_catch_up_equals_an_event_by_event_application(runtime: Runtime) -> None:
    history(runtime)
    head = runtime.app.head()
    assert head > 100
    # Small batches: many of them, the last one short.
    batched = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7)
    assert batched.catch_up() == head
    built = contents(runtime)
    assert all(built[t] for t in ("sk_audit", "sk_configurations", "sk_services")), built.keys()

    reset(runtime)
    # The reference: each event applied alone, in its own savepoint.
    one_by_one = ProjectionFollower(runtime.app, runtime.store, runtime.projections)
    notifications = runtime.app.select_notifications(1, head)
    assert len(notifications) == head
    one_by_one._apply_isolated(notifications)
    assert one_by_one.position() == head
    assert contents(runtime) == built

    reset(runtime)
    default = ProjectionFollower(runtime.app, runtime.store, runtime.projections)
    assert default.catch_up() == head
    assert contents(runtime) == built


def test_configuration_history_from_the_audit_rows_equals_the_events(runtime: Runtime) -> None:
    """The history and as_of's time -> version lookup read the audit log's rows (the configuration
    history read model is gone): every configuration event, with what that read model held, in
    version order; as_of finds the last version at or before a time."""
    history(runtime)
    head = runtime.app.head()
    ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7).catch_up()
    # What the configuration history read model wrote for each event (its `apply_batch`, as it was).
    expected: dict[str, list[dict[str, Any]]] = {}
    for notification in runtime.app.select_notifications(1, head):
        if not notification.topic.startswith("stagekeeper:Configuration."):
            continue
        raw = RawEvent.parse(notification)
        expected.setdefault(raw.aggregate_id, []).append(
            {
                "version": notification.originator_version,
                "at": raw.data["timestamp"],
                "actor": raw.data.get("actor"),
                "reason": raw.data.get("reason"),
                "event_type": raw.type,
                "summary": raw.summary,
                "position": notification.id,
            }
        )
    assert len(expected) == 3
    assert all(len(rows) == 26 for rows in expected.values())
    for configuration_id, rows in expected.items():
        rows.sort(key=lambda row: row["version"])
        assert runtime.audit.history(configuration_id) == rows
        for row, after in itertools.pairwise(rows):
            assert runtime.audit.configuration_version_at(configuration_id, row["at"]) == row["version"]
            just_before = iso(datetime.fromisoformat(after["at"]) - timedelta(microseconds=1))
            assert runtime.audit.configuration_version_at(configuration_id, just_before) == max(
                r["version"] for r in rows if r["at"] <= just_before
            )
        assert runtime.audit.configuration_version_at(configuration_id, rows[-1]["at"]) == rows[-1]["version"]
        first = iso(datetime.fromisoformat(rows[0]["at"]) - timedelta(microseconds=1))
        assert runtime.audit.configuration_version_at(configuration_id, first) is None
    # Another aggregate's id is no configuration's: no history, no version.
    service_id = runtime.read_models.services()[0]["id"]
    assert runtime.audit.history(str(service_id)) == []
    assert runtime.audit.configuration_version_at(str(service_id), "2999-01-01T00:00:00.000000+00:00") is None


def test_batched_catch_up_stops_at_until(runtime: Runtime) -> None:
    history(runtime)
    follower = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=5)
    follower.catch_up(until=20)
    assert 20 <= follower.position() < 25
    follower.catch_up()
    assert follower.position() == runtime.app.head()


def indexes(runtime: Runtime) -> set[str]:
    if runtime.store.dialect == "postgres":
        rows = runtime.store.query("SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()")
    else:
        rows = runtime.store.query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    return {str(r["name"]) for r in rows}


def test_a_build_from_zero_without_indexes_equals_one_with_them(runtime: Runtime) -> None:
    history(runtime)
    head = runtime.app.head()
    with_indexes = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7, bulk_from=head + 1)
    assert with_indexes.catch_up() == head
    built, created = contents(runtime), indexes(runtime)
    assert "sk_audit_service" in created

    reset(runtime)
    dropped: list[set[str]] = []
    follower = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7, bulk_from=head)
    read = runtime.app.select_notifications

    def select(start: int, limit: int, topics: Sequence[str] = ()) -> Sequence[Notification]:
        dropped.append(created - indexes(runtime))
        return read(start, limit, topics)

    follower.source = type(
        "Source",
        (),
        {"select_notifications": staticmethod(select), "decode": runtime.app.decode, "head": runtime.app.head},
    )()
    assert follower.catch_up() == head
    # The plain indexes were gone while the rows went in (not the unique ones), and are back.
    assert {"sk_audit_service", "sk_audit_at", "sk_deployment_history_at"} <= dropped[-1]
    assert not any(name.endswith("_pkey") or "autoindex" in name for name in dropped[-1])
    assert indexes(runtime) == created
    assert contents(runtime) == built
    # And the planner has statistics of the tables filled in bulk (autovacuum may be off or late).
    assert analysed(runtime, "sk_audit")
    assert analysed(runtime, "sk_deployments")


def analysed(runtime: Runtime, table: str) -> bool:
    if runtime.store.dialect == "postgres":
        rows = runtime.store.query(
            "SELECT COUNT(*) AS n FROM pg_stats WHERE schemaname = current_schema() AND tablename = %s", (table,)
        )
    else:
        rows = runtime.store.query("SELECT COUNT(*) AS n FROM sqlite_stat1 WHERE tbl = %s", (table,))
    return int(rows[0]["n"]) > 0


def test_a_build_from_zero_that_dies_half_way_is_consistent_and_resumes(runtime: Runtime, database_url: str) -> None:
    history(runtime)
    head = runtime.app.head()
    reference = ProjectionFollower(runtime.app, runtime.store, runtime.projections, bulk_from=head + 1)
    reference.catch_up()
    built, created = contents(runtime), indexes(runtime)

    reset(runtime)
    read, calls = runtime.app.select_notifications, [0]

    def failing(start: int, limit: int, topics: Sequence[str] = ()) -> Sequence[Notification]:
        calls[0] += 1
        if calls[0] == 4:
            raise UnavailableError("the event store went away")
        return read(start, limit, topics)

    source = type(
        "Source",
        (),
        {"select_notifications": staticmethod(failing), "decode": runtime.app.decode, "head": runtime.app.head},
    )()
    follower = ProjectionFollower(source, runtime.store, runtime.projections, batch=10, bulk_from=head)
    with pytest.raises(UnavailableError):
        follower.catch_up()
    # Three batches committed, each with its positions; the indexes are still missing.
    positions = set(follower.positions().values())
    assert positions == {30}
    assert runtime.store.query("SELECT MAX(position) AS p FROM sk_audit")[0]["p"] == 30
    assert "sk_audit_at" not in indexes(runtime)

    # The process starts again: the missing indexes are created, and the read models finish.
    again = runtime_for(database_url)
    try:
        assert indexes(again) == created
        again.projection_follower.catch_up()
        assert contents(again) == built
        assert indexes(again) == created
    finally:
        again.close()


def test_an_event_that_fails_in_a_batch_read_ahead_is_quarantined_as_before(runtime: Runtime) -> None:
    app = runtime.app
    service_id = app.register_service("payroll", "", stages("int"), actor="a").value.id
    configuration = app.create_configuration(service_id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a").value
    # A revision without its machines (as an older, buggy version might have stored it), among full batches.
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"}, "actor": "a"}
    app.recorder.insert_events(
        [StoredEvent(configuration.id, 2, "stagekeeper:Configuration.Revised", json.dumps(state).encode())]
    )
    bad = app.head()
    for i in range(6):
        app.update_service(service_id, f"after the bad event {i}", actor="a")
    follower = ProjectionFollower(app, runtime.store, runtime.projections, batch=2)
    assert follower.read_ahead == (runtime.store.dialect == "postgres")
    follower.catch_up()

    [entry] = quarantined(runtime.store)
    assert (entry["projection"], entry["position"]) == ("configurations", bad)
    assert set(follower.positions().values()) == {app.head()}
    assert runtime.read_models.services()[0]["description"] == "after the bad event 5"


def counting_source(runtime: Runtime, reads: list[int]) -> Any:
    """The application as a follower's source, counting the batches this process reads itself."""
    read = runtime.app.select_notifications

    def select(start: int, limit: int, topics: Sequence[str] = ()) -> Sequence[Notification]:
        reads.append(start)
        return read(start, limit, topics)

    return type(
        "Source",
        (),
        {"select_notifications": staticmethod(select), "decode": runtime.app.decode, "head": runtime.app.head},
    )()


def test_a_catch_up_read_by_a_reader_process_equals_one_read_in_process(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections import audit

    linked: list[int] = []  # the positions this process linked into the audit chain itself

    def link(previous: str, notification: Notification) -> str:
        linked.append(notification.id)
        return chain.link(previous, notification)

    monkeypatch.setattr(audit, "link", link)
    crossed: list[list[bytes | None]] = []  # each batch's states as they crossed from the reader process
    unchunked = pipeline.unchunked

    def received(sent: Any, *args: Any) -> Any:
        crossed.append(list(sent[4]) if isinstance(sent, tuple) else [n.state for n in sent])
        return unchunked(sent, *args)

    monkeypatch.setattr(pipeline, "unchunked", received)
    history(runtime)
    head = runtime.app.head()
    reference = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7)
    assert reference.catch_up() == head
    built = contents(runtime)

    for halfway in (0, head // 2):
        reset(runtime)
        if halfway:
            # A follower that fell behind: the reader links the audit chain on from the stored head.
            ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7).catch_up(until=halfway)
        reads: list[int] = []
        linked.clear()
        spec = runtime.projection_follower.reader
        follower = ProjectionFollower(
            counting_source(runtime, reads), runtime.store, runtime.projections, batch=7, reader=spec, process_from=1
        )
        assert follower.catch_up() == head - follower_start(halfway)
        assert contents(runtime) == built
        assert set(follower.positions().values()) == {head}
        if runtime.store.dialect == "postgres":
            # Every batch but the first came from the reader process: this process read the first one (while
            # the reader process started up, from the batch after it) and otherwise only looked past the head.
            assert reads[0] == follower_start(halfway) + 1, reads
            assert all(start > head for start in reads[1:]), reads
            # The reader process linked the chain on from where that first batch left it: this process
            # linked the first batch's events only.
            assert linked == list(range(follower_start(halfway) + 1, follower_start(halfway) + 8)), linked
            # Only the states of the events a decoded read model handles crossed (the others' records did).
            assert any(None in states for states in crossed)
            assert any(state is not None for states in crossed for state in states)
        else:
            # SQLite: no reader process (the event store interlocks its readers with the writer).
            assert follower.reader is None
            assert len(reads) > (head - follower_start(halfway)) // 7


def test_links_a_reader_process_made_from_another_head_are_made_again_from_the_stored_events(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    if runtime.store.dialect != "postgres":
        pytest.skip("reader processes are for PostgreSQL")
    from projections import follower as follower_module

    history(runtime)
    head = runtime.app.head()
    reference = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7)
    assert reference.catch_up() == head
    built = contents(runtime)
    reset(runtime)
    # The reader process is given a head the chain does not stand at: none of its links can be used, and the
    # follower links every event itself, from the stored states (which did not cross the pipe: read again).
    monkeypatch.setattr(follower_module, "chained", lambda notifications, chain: "f" * 64)
    reads: list[int] = []
    follower = ProjectionFollower(
        counting_source(runtime, reads),
        runtime.store,
        runtime.projections,
        batch=7,
        reader=runtime.projection_follower.reader,
        process_from=1,
    )
    assert follower.catch_up() == head
    assert contents(runtime) == built
    assert reads[:3] == [1, 8, 22], reads  # the first batch, then each of the reader's batches again


def test_a_reader_process_is_let_go_when_the_first_batch_is_all_there_is(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    if runtime.store.dialect != "postgres":
        pytest.skip("reader processes are for PostgreSQL")
    from projections import follower as follower_module

    history(runtime)
    head = runtime.app.head()
    reference = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7)
    assert reference.catch_up() == head
    built = contents(runtime)
    reset(runtime)
    ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=1).catch_up(until=head - 3)
    start = min(ProjectionFollower(runtime.app, runtime.store, runtime.projections).positions().values())
    assert 0 < head - start < 7  # a batch short of 7 to go
    started: list[pipeline.Reader] = []

    class Recorded(pipeline.Reader):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(follower_module, "Reader", Recorded)
    spec = runtime.projection_follower.reader
    follower = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7, reader=spec, process_from=1)
    assert follower.catch_up() == head - start
    assert contents(runtime) == built
    # The reader process was started (before the batch was read), then stopped, never told to begin.
    [reader] = started
    assert reader.expected == -1
    assert reader._process.poll() is not None


def follower_start(halfway: int) -> int:
    """Where a follower stopped at `until=halfway` with batches of 7 from zero."""
    return 0 if not halfway else -(-halfway // 7) * 7


def test_a_reader_process_that_fails_leaves_the_batch_to_the_follower(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    if runtime.store.dialect != "postgres":
        pytest.skip("reader processes are for PostgreSQL")
    history(runtime)
    head = runtime.app.head()
    reference = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7)
    reference.catch_up()
    built = contents(runtime)
    reset(runtime)
    spec = runtime.projection_follower.reader
    assert spec is not None
    broken = type(spec)(spec.name, {**spec.env, "POSTGRES_DBNAME": "no_such_database"})
    reads: list[int] = []
    follower = ProjectionFollower(
        counting_source(runtime, reads), runtime.store, runtime.projections, batch=7, reader=broken, process_from=1
    )
    with caplog.at_level(logging.WARNING, logger="projections.pipeline"):
        assert follower.catch_up() == head
    assert "the reader process" in caplog.text
    assert contents(runtime) == built
    assert len(reads) > head // 7


def test_an_event_that_fails_in_a_reader_process_batch_is_quarantined_as_before(runtime: Runtime) -> None:
    if runtime.store.dialect != "postgres":
        pytest.skip("reader processes are for PostgreSQL")
    app = runtime.app
    service_id = app.register_service("payroll", "", stages("int"), actor="a").value.id
    configuration = app.create_configuration(service_id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a").value
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"}, "actor": "a"}
    app.recorder.insert_events(
        [StoredEvent(configuration.id, 2, "stagekeeper:Configuration.Revised", json.dumps(state).encode())]
    )
    bad = app.head()
    for i in range(6):
        # NUL, as an older version let in (the read models escape it; the commands refuse it now).
        service = app.service(service_id)
        service.update_description(f"after the bad \u0000 event {i}", actor="a", reason=None)
        app.commit(service)
    reads: list[int] = []
    follower = ProjectionFollower(
        counting_source(runtime, reads),
        runtime.store,
        runtime.projections,
        batch=2,
        reader=runtime.projection_follower.reader,
        process_from=1,
    )
    follower.catch_up()

    [entry] = quarantined(runtime.store)
    assert (entry["projection"], entry["position"]) == ("configurations", bad)
    assert set(follower.positions().values()) == {app.head()}
    assert runtime.read_models.services()[0]["description"] == "after the bad \\u0000 event 5"
    assert reads[0] == 1, reads  # the first batch, read while the reader process started up
    # Then only the batch that failed, read again for its stored states (which the reader process sends only
    # for the events of decoded read models) to be applied event by event; and a look past the head.
    [again] = [start for start in reads[1:] if start <= app.head()]
    assert again <= bad < again + 4, reads


def test_a_build_from_zero_gives_emptied_tables_fresh_storage_and_leaves_others(runtime: Runtime) -> None:
    if runtime.store.dialect != "postgres":
        pytest.skip("TRUNCATE is PostgreSQL's")
    history(runtime)
    head = runtime.app.head()
    ProjectionFollower(runtime.app, runtime.store, runtime.projections, bulk_from=head + 1).catch_up()
    built, created = contents(runtime), indexes(runtime)

    def storage(table: str) -> int:
        return int(runtime.store.query("SELECT pg_relation_filenode(%s) AS f", (table,))[0]["f"])

    reset(runtime)  # the rows deleted, still in the heap (no VACUUM)
    before = {table: storage(table) for table in ("sk_audit", "sk_deployment_history")}
    # A table that (against the rule) holds a row at position zero keeps it: only empty tables are truncated.
    with runtime.store.transaction() as cursor:
        cursor.execute("INSERT INTO sk_media VALUES ('kept', 'kept.iso', 'dc', 'ds', 'p', 1, 'x', 'u', 't', 0)")
    media_storage = storage("sk_media")
    follower = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7, bulk_from=head)
    assert follower.catch_up() == head
    assert all(storage(table) != filenode for table, filenode in before.items())
    assert storage("sk_media") == media_storage
    with runtime.store.transaction() as cursor:
        cursor.execute("DELETE FROM sk_media WHERE id = 'kept'")
    assert contents(runtime) == built
    assert indexes(runtime) == created
    # Statistics of the columns the audit queries filter on, not of the summary (never searched).
    gathered = {
        str(r["attname"])
        for r in runtime.store.query(
            "SELECT attname FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'sk_audit'"
        )
    }
    assert {"service_id", "at", "event_type", "position"} <= gathered
    assert "summary" not in gathered


def test_a_reader_reads_the_columns_the_recorder_gives(runtime: Runtime) -> None:
    from projections.pipeline import columns, select_columns

    history(runtime)
    # (The reader process's recorder is the factory's own, without the application's guard around it.)
    recorder = getattr(runtime.app.recorder, "wrapped", runtime.app.recorder)
    for start, limit in ((1, 1000), (5, 7), (runtime.app.head(), 10), (runtime.app.head() + 1, 10)):
        expected = columns(runtime.app.select_notifications(start, limit))
        got = select_columns(recorder, start, limit)
        if runtime.store.dialect == "postgres":
            assert isinstance(got, tuple)  # read straight into columns
        assert (columns(got) if isinstance(got, list) else got) == expected


def test_positions_are_read_once_a_catch_up_unless_another_follower_moved_them(runtime: Runtime) -> None:
    history(runtime)
    head = runtime.app.head()
    ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7).catch_up()
    built = contents(runtime)

    reset(runtime)
    follower = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=7)
    reads = 0
    positions = follower.positions

    def counted() -> dict[str, int]:
        nonlocal reads
        reads += 1
        return positions()

    follower.positions = counted  # type: ignore[method-assign]
    assert follower.catch_up() == head
    assert reads == 1  # then each batch's own commit says where the next one starts
    assert contents(runtime) == built

    # Another follower moves the positions between two batches: the locked read finds it, the loop
    # reads them again and goes on from there, and every read model ends as before.
    reset(runtime)
    other = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=5)
    selects = 0

    def select(start: int, limit: int, topics: Sequence[str] = ()) -> Sequence[Notification]:
        nonlocal selects
        selects += 1
        if selects == 3:
            other.catch_up(until=start + 20)
        return runtime.app.select_notifications(start, limit, topics)

    source = type(
        "Source",
        (),
        {"select_notifications": staticmethod(select), "decode": runtime.app.decode, "head": runtime.app.head},
    )()
    reads = 0
    behind = ProjectionFollower(source, runtime.store, runtime.projections, batch=7)
    positions = behind.positions
    behind.positions = counted  # type: ignore[method-assign]
    behind.catch_up()
    assert reads >= 2
    assert contents(runtime) == built
    assert set(behind.positions().values()) == {head}
