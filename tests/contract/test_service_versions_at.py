"""`AuditQueries.service_versions_at` (the board `as_of` reads every service's version in one statement)
answers what `services_known_at` and `aggregate_version_at` answer service by service, at every instant."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import eventsourcing.domain
import pytest

from adapters.runtime import Runtime
from tests.support import runtime_for

START = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    if database_url == "memory://":
        pytest.skip("the same read store on SQLite")
    runtime = runtime_for(database_url)
    yield runtime
    runtime.close()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def test_every_services_version_at_an_instant_in_one_statement(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [START]

    def now() -> datetime:
        clock[0] += timedelta(minutes=1)
        return clock[0]

    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", now)
    app = runtime.app
    ids = []
    for i in range(4):
        stages = [{"name": "int", "resource_pool": f"/DC0/host/DC0_C0/Resources/versions-{i}"}]
        ids.append(app.register_service(f"versions-{i}", "", stages, actor="ann").value.id)
        for n in range(i):  # a service changed i times, between the others' registrations
            app.update_service(ids[n], f"changed by {i}", actor="ann")
    app.retire_service(ids[0], actor="ann", reason="gone")
    runtime.projection_follower.catch_up()
    audit = runtime.audit
    instants = [iso(START + timedelta(seconds=30 * k)) for k in range(0, 2 * 20)] + ["9999"]
    answered = set()
    for when in instants:
        expected = {}
        for service_id in audit.services_known_at(when):
            version = audit.aggregate_version_at(service_id, when)
            assert version is not None
            expected[service_id] = version
        assert audit.service_versions_at(when) == expected, when
        answered.add(tuple(sorted(expected.values())))
    assert len(answered) > 5  # the instants saw the services appear and change
    assert audit.service_versions_at(iso(START)) == {}
