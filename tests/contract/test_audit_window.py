"""A time window over the whole audit log is read as a range of positions plus the late rows
(projections/audit_queries.py): every page, cursor and export is the one a plain filter over every row
makes, whatever order the events' times are in; the late marks are the same applied in any batches,
by any followers, or rebuilt from zero in bulk."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from adapters.runtime import Runtime, projections
from projections import audit_queries
from projections.audit_queries import AuditFilter
from projections.follower import ProjectionFollower
from projections.pipeline import Reader, ReaderSpec
from tests.support import runtime_for

START = datetime(2025, 1, 1, tzinfo=UTC)
ACTORS = ("ann", "bob", "cy")
TYPES = ("Probe.Ping", "Probe.Pong", "NameClaim.Claimed")


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    if database_url == "memory://":
        pytest.skip("the same read store on SQLite")
    runtime = runtime_for(database_url)
    yield runtime
    runtime.close()


def when(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def record(runtime: Runtime, rng: random.Random, count: int, clock: list[int]) -> None:
    """`count` events whose times mostly follow a clock of few distinct values (ties), some from the past
    (late: made before, committed after; a few far back) and some ahead of it (every one after is then late
    until the clock passes it). A few are stored with a time the audit log cannot order as text (late)."""
    stored = []
    for _ in range(count):
        clock[0] += rng.choice((0, 0, 1, 1, 2, 5))
        roll = rng.random()
        minutes = clock[0]
        if roll < 0.15:
            minutes -= rng.randint(1, 8)
        elif roll < 0.17:
            minutes -= rng.randint(20, 400)
        elif roll < 0.19:
            minutes += rng.randint(1, 30)
        state: dict[str, Any] = {"actor": rng.choice(ACTORS)}
        state["timestamp"] = (
            {"_type_": "datetime_iso", "_data_": when(minutes)} if rng.random() > 0.01 else minutes
        )  # (an untagged number: stored as text, never ordered as a time)
        topic = "stagekeeper:" + rng.choice(TYPES)
        stored.append(StoredEvent(uuid4(), 1, topic, json.dumps(state).encode()))
    runtime.app.recorder.insert_events(stored)


def everything(runtime: Runtime) -> list[dict[str, Any]]:
    return runtime.store.query("SELECT position, at, actor, event_type FROM sk_audit ORDER BY position")


def late_marks(runtime: Runtime) -> list[tuple[Any, ...]]:
    rows = runtime.store.query("SELECT at, position, top FROM sk_audit_late ORDER BY position")
    return [(r["at"], int(r["position"]), r["top"]) for r in rows]


def expected_marks(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The late rows by their definition: a time below the largest time before it, or a time that is no
    plain text (here: a number)."""
    top, marks = "", []
    for row in rows:
        at = row["at"]
        if at[:4] == "2025" and at >= top:
            top = at
        else:
            marks.append((at, int(row["position"]), top))
    return marks


def windows(rows: list[dict[str, Any]], rng: random.Random) -> Iterator[AuditFilter]:
    """Time windows of every kind (empty, inverted, a tie's edge, one minute, wide, open at either
    end), alone and with the other filters."""
    times = sorted({r["at"] for r in rows if r["at"][:4] == "2025"})
    picks = [*rng.sample(times, 12), times[0], times[-1], when(-10_000), when(10**6)]
    for _ in range(40):
        since, until = rng.choice(picks), rng.choice(picks)
        if rng.random() < 0.3:
            until = since[:17] + "59.999999+00:00"  # the minute `since` is in (the clock's ties)
        shape = rng.random()
        window = {"since": since, "until": until}
        if shape < 0.15:
            window = {"since": since}
        elif shape < 0.3:
            window = {"until": until}
        extra = rng.choice(
            (
                {},
                {},
                {"include_system": True},
                {"actor": rng.choice(ACTORS)},
                {"event_type": "Probe."},
                {"event_type": "Probe.Pong", "actor": rng.choice(ACTORS)},
                {"event_type": "NameClaim."},
            )
        )
        yield AuditFilter(**window, **extra)


def reference(rows: list[dict[str, Any]], filters: AuditFilter) -> list[int]:
    """The positions a filter over every row selects, oldest first."""
    chosen = []
    for row in rows:
        at, kind = row["at"], row["event_type"]
        if filters.since is not None and not at >= filters.since:
            continue
        if filters.until is not None and not at < filters.until:
            continue
        if filters.actor is not None and row["actor"] != filters.actor:
            continue
        if filters.event_type is not None and not (
            kind.startswith(filters.event_type) if filters.event_type.endswith(".") else kind == filters.event_type
        ):
            continue
        if not filters.shows_system and kind.startswith("NameClaim."):
            continue
        chosen.append(int(row["position"]))
    return chosen


def mismatches(runtime: Runtime, rows: list[dict[str, Any]], rng: random.Random) -> list[str]:
    """Every page (followed by its cursor, at random sizes), a page from a random cursor, and the export of
    each window, against the reference; the windows where they differ."""
    found = []
    for filters in windows(rows, rng):
        expected = reference(rows, filters)
        newest = list(reversed(expected))
        limit = rng.choice((1, 3, 10, 1000))
        pages: list[list[int]] = []
        before: int | None = None
        while True:
            items, cursor = runtime.audit.page(filters, before, limit)
            pages.append([int(item["position"]) for item in items])
            if cursor is None:
                break
            assert cursor == pages[-1][-1]
            before = cursor
        want = [newest[i : i + limit] for i in range(0, len(newest), limit)] or [[]]
        start = rng.randint(1, len(rows) + 1)
        items, _ = runtime.audit.page(filters, start, 5)
        from_cursor = [int(item["position"]) for item in items]
        exported = [int(row["position"]) for row in runtime.audit.stream(filters)]
        if pages != want or from_cursor != [p for p in newest if p < start][:5] or exported != expected:
            found.append(repr(filters))
    return found


@pytest.mark.parametrize("late_enough", [1000, 3])
def test_windows_over_out_of_order_times_answer_as_a_filter_over_every_row(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, late_enough: int
) -> None:
    # 3: every window holding 3 late rows or more is read by the plain filtered scan (`_crowded`), the others
    # in two parts: both ways held to the reference.
    monkeypatch.setattr(audit_queries, "LATE_ENOUGH", late_enough)
    rng = random.Random(15)
    clock = [0]
    follower = ProjectionFollower(runtime.app, runtime.store, runtime.projections, batch=37)
    for _ in range(5):
        record(runtime, rng, rng.randint(40, 120), clock)
        follower.catch_up()
        rows = everything(runtime)
        assert late_marks(runtime) == expected_marks(rows)
        assert mismatches(runtime, rows, rng) == []
    # The windows tested hold late rows the range of positions leaves out: without them, answers differ.
    with runtime.store.transaction() as cursor:
        cursor.execute("DELETE FROM sk_audit_late")
    assert len(mismatches(runtime, rows, random.Random(15))) > 5


def test_late_marks_are_the_same_incrementally_by_any_followers_and_rebuilt_in_bulk(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(7)
    clock = [0]
    for _ in range(6):
        record(runtime, rng, rng.randint(1, 60), clock)
        # A new follower with new projections each time: the running maximum is read back from the rows.
        batch = rng.choice((1, 5, 50))
        ProjectionFollower(runtime.app, runtime.store, projections(runtime.app), batch=batch).catch_up()
    incremental = late_marks(runtime)
    assert incremental == expected_marks(everything(runtime))
    assert len(incremental) > 10
    # Rebuilt from zero in bulk (indexes dropped), read by a reader process on PostgreSQL.
    reader = ReaderSpec(runtime.app.name, dict(runtime.app.env))
    bulk = ProjectionFollower(
        runtime.app, runtime.store, projections(runtime.app), batch=16, bulk_from=1, reader=reader, process_from=1
    )
    taken: list[object] = []
    take = Reader.take

    def counted(self: Reader) -> Any:
        taken.append(take(self))
        return taken[-1]

    monkeypatch.setattr(Reader, "take", counted)
    assert bulk.rebuild("audit") == runtime.app.head()
    assert late_marks(runtime) == incremental
    assert [batch for batch in taken if batch is not None] or runtime.store.dialect == "sqlite"
