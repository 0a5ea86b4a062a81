"""The scale benchmark's bulk writer (scripts/bench/bulk.py) stores what one command per
transaction stores: the same small history written both ways gives identical rows (aggregate,
version, topic, state bytes; the same snapshots), ids and times made deterministic by seeded ids
and the synthetic clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import eventsourcing.domain

from adapters.runtime import Runtime
from adapters.settings import Settings
from scripts.bench.audit import SyntheticClock
from scripts.bench.bulk import seeded_ids
from scripts.bench.scale import build
from tests.support import postgres_schema


def stored(batch: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], tuple[int, int]]:
    with postgres_schema() as url:
        original = eventsourcing.domain.datetime_now_with_tzinfo
        eventsourcing.domain.datetime_now_with_tzinfo = SyntheticClock(timedelta(seconds=7))
        try:
            with seeded_ids(11):
                runtime = Runtime(Settings(database_url=url, admin_password="bulk-test-password"))
                # 3 services, 7 deployments, the first configuration at 60 versions (a snapshot at 50).
                build(runtime, 3, 7, 200, 60, batch)
        finally:
            eventsourcing.domain.datetime_now_with_tzinfo = original
        app = runtime.app
        events = [
            (n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))
            for n in app.select_notifications(1, 100_000)
        ]
        snapshots = [
            (s.originator_id, s.originator_version, s.topic, bytes(s.state))
            for originator in sorted({e[1] for e in events})
            for s in app.snapshots.recorder.select_events(originator)  # type: ignore[union-attr]
        ]
        runtime.close()
        return events, snapshots, (len(events), len(snapshots))


def test_the_bulk_writer_stores_byte_identical_events_and_snapshots() -> None:
    one_by_one = stored(0)
    bulk = stored(40)  # several transactions, some flushed in the middle of a command's reads
    assert one_by_one[2][0] > 150
    assert one_by_one[2][1] >= 1
    assert bulk[2] == one_by_one[2]
    assert bulk[0] == one_by_one[0]
    assert bulk[1] == one_by_one[1]
