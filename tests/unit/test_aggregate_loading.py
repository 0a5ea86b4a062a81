"""Loading aggregates (domain/application.py): from the cache, a snapshot or every event, the same state."""

from __future__ import annotations

from eventsourcing.application import project_aggregate

from domain.service import Service
from tests.support import runtime_for, stages


def test_a_service_loaded_from_its_snapshot_is_the_service_replayed_from_every_event() -> None:
    runtime = runtime_for("memory://")
    try:
        app = runtime.app
        service_id = app.register_service("payroll", "", stages("int", "prod"), actor="a").value.id
        for i in range(120):
            app.update_service(service_id, f"revision {i}", actor="a", reason=f"why {i}")
        assert app.snapshots is not None
        snapshots = list(app.snapshots.get(service_id))
        assert [s.originator_version for s in snapshots] == [50, 100]
        replayed = project_aggregate(None, app.events.get(service_id))
        loaded = app.service(service_id)  # from the cache
        rebuilt = app.repository._reconstruct_aggregate(service_id, None, app.snapshotting_projectors[Service])
        assert isinstance(replayed, Service)
        assert replayed.description == "revision 119"
        assert vars(loaded) == vars(replayed)
        assert vars(rebuilt) == vars(replayed)
        older = app.load(Service, service_id, "service", version=75)  # snapshot 50, then 25 events
        assert older.description == "revision 73"
        assert older.version == 75
    finally:
        runtime.close()
