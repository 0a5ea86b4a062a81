"""Read models survive events that hold NUL, and events they cannot apply (on every persistence)."""

from __future__ import annotations

import json
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from api.cli import main
from domain.deployment import Deployment
from domain.errors import UnavailableError
from projections.audit_queries import AuditFilter
from projections.deployments import DeploymentsProjection
from projections.quarantine import quarantined
from projections.verify import verify
from tests.support import THREE_TIER, runtime_for, settings_for, stages


def write_nul_events(runtime: Runtime) -> UUID:
    """Events holding NUL, written through the application past the command's validation
    (as a store written before commands refused control characters holds them)."""
    app = runtime.app
    service_id = app.register_service("payroll", "", stages("int"), actor="a").value.id
    service = app.service(service_id)
    service.update_description("a\u0000b", actor="a", reason="why\u0000not")
    service.grant(uuid4(), "viewer", "bob\u0000", None, None, actor="a", reason=None)
    app.commit(service)
    return service_id


def test_events_holding_nul_are_projected_rebuilt_and_verified(runtime: Runtime) -> None:
    service_id = write_nul_events(runtime)
    runtime.catch_up()
    [service] = runtime.read_models.services()
    assert service["description"] == "a\\u0000b"
    entries, _ = runtime.audit.page(AuditFilter(), None, 100)
    assert "why\\u0000not" in [e["reason"] for e in entries]
    assert [g["member_user"] for g in runtime.store.query("SELECT * FROM sk_grants")] == ["bob\\u0000"]
    assert quarantined(runtime.store) == []
    assert runtime.projection_follower.position() == runtime.app.head()
    for projection in runtime.projections:
        runtime.projection_follower.rebuild(projection.name)
    assert runtime.read_models.services()[0]["description"] == "a\\u0000b"
    verdict = verify(runtime.app, runtime.store)
    assert verdict.ok, verdict.describe()
    assert verdict.checked == runtime.app.head()
    assert runtime.app.service(service_id).description == "a\u0000b"


def test_sqlite_and_postgres_give_the_same_hash_chain_for_the_same_events(sqlite_url: str, postgres_url: str) -> None:
    first = runtime_for(sqlite_url)
    second = runtime_for(postgres_url)
    try:
        write_nul_events(first)
        stored = [
            StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
            for n in first.app.select_notifications(1, 1000)
        ]
        second.app.recorder.insert_events(stored)
        first.catch_up()
        second.catch_up()
        # Only the copied events: each process manager then writes its own (other timestamps).
        chain = "SELECT position, hash FROM sk_audit WHERE position <= %s ORDER BY position"
        assert first.store.query(chain, (len(stored),)) == second.store.query(chain, (len(stored),))
        assert len(first.store.query(chain, (len(stored),))) == len(stored) == 7  # incl. pool claim and pool plan
        assert verify(second.app, second.store).ok
    finally:
        first.close()
        second.close()


def test_an_event_a_read_model_cannot_apply_is_quarantined_and_nothing_else_stops(runtime: Runtime) -> None:
    app = runtime.app
    service_id = app.register_service("payroll", "", stages("int"), actor="a").value.id
    configuration = app.create_configuration(service_id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a").value
    runtime.catch_up()
    # A revision as an older, buggy version might have stored it: without its machines.
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"}, "actor": "a"}
    app.recorder.insert_events(
        [StoredEvent(configuration.id, 2, "stagekeeper:Configuration.Revised", json.dumps(state).encode())]
    )
    bad = app.head()
    app.update_service(service_id, "after the bad event", actor="a")
    runtime.catch_up()

    [entry] = quarantined(runtime.store)
    assert (entry["projection"], entry["position"]) == ("configurations", bad)
    assert "KeyError" in entry["error"]
    # Every read model, the failing one included, went on past it.
    assert set(runtime.projection_follower.positions().values()) == {app.head()}
    assert runtime.read_models.services()[0]["description"] == "after the bad event"
    assert [r["position"] for r in runtime.store.query("SELECT position FROM sk_audit")][-2:] == [bad, app.head()]

    settings = settings_for(runtime.settings.database_url)
    with TestClient(create_app(settings, runtime=runtime)) as client:
        health = client.get("/healthz").json()
    assert health["status"] == "degraded"
    assert [(q["projection"], q["position"]) for q in health["quarantined"]] == [("configurations", bad)]


def test_the_cli_rebuilds_and_verifies_a_postgres_store_holding_nul(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = runtime_for(postgres_url)
    try:
        write_nul_events(runtime)
    finally:
        runtime.close()
    monkeypatch.setenv("STAGEKEEPER_DATABASE_URL", postgres_url)
    monkeypatch.setenv("STAGEKEEPER_ADMIN_PASSWORD", "secret-pw")
    assert main(["projections", "rebuild", "services"]) == 0
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "rebuilt services" in out
    assert "OK:" in out
    after = runtime_for(postgres_url)
    try:
        assert quarantined(after.store) == []
        assert after.read_models.services()[0]["description"] == "a\\u0000b"
        assert len(after.store.query("SELECT position FROM sk_audit")) == after.app.head()
    finally:
        after.close()


def test_verify_passes_over_an_event_the_audit_quarantined_and_names_it(runtime: Runtime) -> None:
    app = runtime.app
    service_id = app.register_service("payroll", "", stages("int"), actor="a").value.id
    # A stored event without its time: the audit cannot record it (every entry has a time).
    app.recorder.insert_events([StoredEvent(uuid4(), 1, "stagekeeper:Refusal.Recorded", b'{"actor": "a"}')])
    bad = app.head()
    app.update_service(service_id, "later", actor="a")
    runtime.catch_up()
    assert [(q["projection"], q["position"]) for q in quarantined(runtime.store)] == [("audit", bad)]
    verdict = verify(runtime.app, runtime.store)
    assert verdict.ok, verdict.describe()
    assert verdict.quarantined == (bad,)
    assert f"positions {bad}" in verdict.describe()
    assert verdict.checked == app.head() - 1


def test_an_unreachable_event_store_is_retried_never_quarantined(runtime: Runtime) -> None:
    """The deployments read model loads aggregates from the event store: while that store is
    unreachable the batch fails and is retried later; nothing is passed over for good."""
    app = runtime.app
    service_id = app.register_service("payroll", "", stages("int"), actor="a").value.id
    configuration = app.create_configuration(service_id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a").value
    deployment_id = app.deploy(configuration.id, "int", actor="a").value.id
    runtime.catch_up()
    [projection] = [p for p in runtime.projections if isinstance(p, DeploymentsProjection)]
    load = projection._load

    def unreachable(deployment: UUID, version: int) -> Deployment:
        raise UnavailableError("the event store is unreachable; try again shortly")

    projection._kept.clear()  # as after a restart: the next event needs a load
    projection._load = unreachable
    app.undeploy(deployment_id, actor="a")
    with pytest.raises(UnavailableError):
        runtime.projection_follower.catch_up()
    assert quarantined(runtime.store) == []
    projection._load = load
    runtime.catch_up()
    assert quarantined(runtime.store) == []
    [row] = runtime.read_models.deployments()
    assert row["state"] == app.deployment(deployment_id).view()["state"]
    assert row["version"] == app.deployment(deployment_id).version
