"""Leases on every persistence: deploy with a lease, warn, expire by policy, extend, keep, idle reaping."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import ConflictError, ValidationError
from domain.leases import stamp
from domain.processes.leases import report
from projections.leases import lease_candidates
from tests.support import THREE_TIER, FixedClock, settings_for, stages

Policy = dict[str, Any]
LEASE_EVENTS = {
    "Service.StageLeasePolicyChanged", "Deployment.LeaseSet", "Deployment.LeaseExtended", "Deployment.KeepChanged",
    "Deployment.LeaseExpiring", "Deployment.LeaseExpired", "Webhook.Subscribed", "Webhook.Removed",
}  # fmt: skip


@pytest.fixture
def clock() -> FixedClock:
    # Event timestamps are the system's: idle reaping compares them with this clock.
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def runtime(database_url: str, vcenter: SimulatedVCenter, clock: FixedClock) -> Iterator[Runtime]:
    runtime = Runtime(settings_for(database_url), vcenter=vcenter, clock=clock)
    runtime.app.import_templates(None, True, actor="admin")
    yield runtime
    runtime.close()


def service_with(runtime: Runtime, policy: Policy | None, stage: str = "int") -> tuple[UUID, UUID]:
    service = runtime.app.register_service("payroll", "", stages("int", "prod", restricted=("prod",)), actor="a").value
    if policy is not None:
        runtime.app.update_stage(service.id, stage, {"lease_policy": policy}, actor="a", reason="leases")
    configuration = runtime.app.create_configuration(service.id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a")
    return service.id, configuration.value.id


def deployed(runtime: Runtime, configuration_id: UUID, stage: str = "int", **lease: Any) -> UUID:
    deployment_id = runtime.app.deploy(configuration_id, stage, actor="alice", **lease).value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return deployment_id


def tick(runtime: Runtime) -> list[tuple[str, str]]:
    runtime.catch_up()
    steps = runtime.lease_workers.scheduler.tick()
    runtime.catch_up()
    return [(s.due.action, s.due.kind) for s in steps]


def test_the_stage_default_lease_warns_once_then_undeploys(
    runtime: Runtime, vcenter: SimulatedVCenter, clock: FixedClock
) -> None:
    _, configuration_id = service_with(runtime, {"default": "P3D", "warning": "P1D"})
    deployment_id = deployed(runtime, configuration_id)
    lease = runtime.app.deployment(deployment_id).view()["lease"]
    assert lease["expires_at"] == stamp(clock.now() + timedelta(days=3))
    assert tick(runtime) == []
    clock.advance(days=2, hours=1)
    assert tick(runtime) == [("warn", "lease")]
    assert tick(runtime) == []  # once per lease
    clock.advance(days=1)
    assert tick(runtime) == [("expire", "lease")]
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "undeployed"
    assert deployment.view()["lease"]["expired"]["policy"] == "undeploy"
    assert vcenter.find_vms(deployment_id) == []
    events = [type(e).__name__ for e in runtime.app.repository.event_store.get(deployment_id)]
    assert events.index("LeaseExpiring") < events.index("LeaseExpired") < events.index("UndeployRequested")
    undeploy = next(
        e for e in runtime.app.repository.event_store.get(deployment_id) if type(e).__name__ == "UndeployRequested"
    )
    assert getattr(undeploy, "actor") == "stagekeeper:lease"  # noqa: B009 (events are typed as protocols)
    assert "lease expired" in (getattr(undeploy, "reason") or "")  # noqa: B009


def test_power_off_policy_powers_the_machines_off_and_keeps_the_deployment(
    runtime: Runtime, vcenter: SimulatedVCenter, clock: FixedClock
) -> None:
    _, configuration_id = service_with(runtime, {"on_expiry": "power-off"})
    deployment_id = deployed(runtime, configuration_id, lease="PT2H")
    clock.advance(hours=3)
    assert tick(runtime) == [("expire", "lease")]
    assert runtime.app.deployment(deployment_id).state == "deployed"
    assert all(not vm.powered_on for vm in vcenter.find_vms(deployment_id))
    assert tick(runtime) == []  # acted on once
    # Extended, it expires again later.
    runtime.app.change_lease(deployment_id, {"extend_by": "PT1H"}, actor="alice")
    clock.advance(hours=2)
    assert tick(runtime) == [("expire", "lease")]


def test_archive_policy_records_the_expiry_and_destroys_nothing_itself(
    runtime: Runtime, vcenter: SimulatedVCenter, clock: FixedClock
) -> None:
    """The expiry writes no undeploy: the archive process archives first, then undeploys
    (tests/contract/test_lease_archive.py follows it to the end)."""
    _, configuration_id = service_with(runtime, {"on_expiry": "archive"})
    deployment_id = deployed(runtime, configuration_id, lease="PT1H")
    assert tick(runtime) == [("warn", "lease")]  # the default warning (a day) has begun already
    clock.advance(hours=2)
    assert runtime.lease_workers.scheduler.tick()[0].due.action == "expire"
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.view()["lease"]["expired"]["policy"] == "archive"
    assert deployment.state == "deployed"
    assert "UndeployRequested" not in [type(e).__name__ for e in runtime.app.repository.event_store.get(deployment_id)]
    assert len(vcenter.find_vms(deployment_id)) == 4


def test_a_restricted_stage_without_a_policy_never_expires(runtime: Runtime, clock: FixedClock) -> None:
    _, configuration_id = service_with(runtime, None)
    deployment_id = deployed(runtime, configuration_id, stage="prod")
    assert runtime.app.deployment(deployment_id).view()["lease"]["expires_at"] is None
    clock.advance(days=400)
    assert tick(runtime) == []


def test_leases_are_bounded_by_the_stage_maximum(runtime: Runtime, clock: FixedClock) -> None:
    _, configuration_id = service_with(runtime, {"default": "P1D", "maximum": "P5D"})
    with pytest.raises(ValidationError) as refused:
        runtime.app.deploy(configuration_id, "int", actor="alice", lease="P6D")
    assert refused.value.field == "lease"
    deployment_id = deployed(runtime, configuration_id, lease="P4D")
    with pytest.raises(ValidationError) as too_long:
        runtime.app.change_lease(deployment_id, {"extend_by": "P2D"}, actor="alice")
    assert too_long.value.field == "extend_by"
    later = clock.now() + timedelta(days=5)
    runtime.app.change_lease(deployment_id, {"expires_at": later.isoformat()}, actor="alice", reason="demo")
    assert runtime.app.deployment(deployment_id).view()["lease"]["expires_at"] == stamp(later)
    with pytest.raises(ValidationError):
        runtime.app.change_lease(deployment_id, {"expires_at": "tomorrow"}, actor="alice")


def test_extending_at_the_last_moment_races_expiry_and_exactly_one_wins(
    runtime: Runtime, vcenter: SimulatedVCenter, clock: FixedClock
) -> None:
    _, configuration_id = service_with(runtime, {"warning": "PT1M"})
    deployment_id = deployed(runtime, configuration_id, lease="PT1H")
    runtime.catch_up()
    clock.advance(hours=1)  # due now
    results: dict[str, object] = {}
    start = threading.Barrier(2)

    def extend() -> None:
        start.wait()
        try:
            runtime.app.change_lease(deployment_id, {"extend_by": "P1D"}, actor="alice")
            results["extend"] = "won"
        except ConflictError as error:
            results["extend"] = error

    def expire() -> None:
        start.wait()
        results["expire"] = runtime.lease_workers.scheduler.tick()

    threads = [threading.Thread(target=extend), threading.Thread(target=expire)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deployment = runtime.app.deployment(deployment_id)
    names = [type(e).__name__ for e in runtime.app.repository.event_store.get(deployment_id)]
    # Never both: the extension wins (no expiry, still deployed) or the expiry does (extension refused).
    assert ("LeaseExtended" in names) != ("LeaseExpired" in names)
    if results["extend"] == "won":
        assert deployment.state == "deployed"
        assert results["expire"] == []
    else:
        assert isinstance(results["extend"], ConflictError)
        assert deployment.state == "undeploying"


def test_idle_deployments_are_warned_then_reaped_unless_kept(runtime: Runtime, clock: FixedClock) -> None:
    _, configuration_id = service_with(runtime, {"idle_days": 3, "warning": "P1D"})
    idle = deployed(runtime, configuration_id)
    kept = deployed(runtime, configuration_id)
    runtime.app.change_lease(kept, {"keep": True}, actor="alice", reason="demo machine")
    busy = deployed(runtime, configuration_id)
    assert tick(runtime) == []  # the scheduler runs all along: it notes each activity by the Clock
    clock.advance(days=2, hours=1)
    assert sorted(tick(runtime)) == [("warn", "idle"), ("warn", "idle")]
    # Activity (a console opened, a power command) moves the idle clock.
    runtime.app.power_machine(busy, "web1", "off", actor="alice")
    assert tick(runtime) == []
    clock.advance(days=1)
    assert tick(runtime) == [("expire", "idle")]
    assert runtime.app.deployment(idle).state == "undeployed"
    assert runtime.app.deployment(kept).state == "deployed"
    assert runtime.app.deployment(busy).state == "deployed"
    expired = runtime.app.deployment(idle).view()["lease"]["expired"]
    assert expired["kind"] == "idle"


def test_the_dry_run_report_lists_what_would_expire_or_be_reaped(runtime: Runtime, clock: FixedClock) -> None:
    service_id, configuration_id = service_with(runtime, {"idle_days": 10})
    soon = deployed(runtime, configuration_id, lease="P2D")
    deployed(runtime, configuration_id, lease="P20D")
    tick(runtime)
    service = runtime.app.service(service_id)

    def policies(_: str, stage: str) -> Any:
        from domain.leases import policy_of

        return policy_of(service.stage(stage))

    now = clock.now()
    items = report(lease_candidates(runtime.store), policies, now, now + timedelta(days=3))
    assert [(i["deployment_id"], i["kind"]) for i in items] == [(str(soon), "lease")]
    items = report(lease_candidates(runtime.store), policies, now, now + timedelta(days=11))
    assert sorted(i["kind"] for i in items) == ["idle", "idle", "lease"]
    assert runtime.app.deployment(soon).state == "deployed"  # a report changes nothing


def test_a_lease_cannot_change_once_the_deployment_is_undeploying(runtime: Runtime) -> None:
    _, configuration_id = service_with(runtime, {"default": "P1D"})
    deployment_id = deployed(runtime, configuration_id)
    runtime.app.undeploy(deployment_id, actor="alice")
    with pytest.raises(ConflictError):
        runtime.app.change_lease(deployment_id, {"extend_by": "P1D"}, actor="alice")
    with pytest.raises(ValidationError):
        runtime.app.change_lease(deployment_id, {}, actor="alice")


def test_a_stage_policy_is_validated_and_cleared(runtime: Runtime) -> None:
    service_id, _ = service_with(runtime, {"default": "P7D", "idle_days": 5})
    stage = runtime.app.service(service_id).stage("int")
    assert stage["lease_policy"]["default"] == "P7D"
    for bad, field in (
        ({"default": "7 days"}, "lease_policy.default"),
        ({"on_expiry": "explode"}, "lease_policy.on_expiry"),
        ({"idle_days": 0}, "lease_policy.idle_days"),
        ({"default": "P9D", "maximum": "P3D"}, "lease_policy.default"),
    ):
        with pytest.raises(ValidationError) as refused:
            runtime.app.update_stage(service_id, "int", {"lease_policy": bad}, actor="a")
        assert refused.value.field == field
    runtime.app.update_stage(service_id, "int", {"lease_policy": None}, actor="a")
    assert "lease_policy" not in runtime.app.service(service_id).stage("int")


def test_every_lease_and_webhook_event_is_audited_with_a_readable_summary(runtime: Runtime, clock: FixedClock) -> None:
    service_id, configuration_id = service_with(runtime, {"default": "P1D", "idle_days": 30})
    deployment_id = deployed(runtime, configuration_id)
    runtime.app.change_lease(deployment_id, {"extend_by": "P1D", "keep": True}, actor="alice")
    clock.advance(days=1, hours=12)
    tick(runtime)
    clock.advance(days=1)
    tick(runtime)
    webhook = runtime.app.subscribe_webhook(service_id, ["drift"], "https://hooks.example/sk", actor="a").value
    runtime.app.remove_webhook(webhook.id, actor="a", reason="moved")
    runtime.catch_up()
    rows = runtime.store.query("SELECT event_type, summary, actor FROM sk_audit ORDER BY position")
    summaries = {r["event_type"]: r["summary"] for r in rows if r["event_type"] in LEASE_EVENTS}
    assert set(summaries) == LEASE_EVENTS
    assert "lease policy: none (nothing expires) -> default P1D" in summaries["Service.StageLeasePolicyChanged"]
    assert summaries["Deployment.LeaseExpired"].endswith(": undeploy")
    assert summaries["Deployment.KeepChanged"] == "kept: exempt from idle reaping"
    assert summaries["Webhook.Subscribed"] == "webhook to https://hooks.example/sk for drift"
    assert "hooks.example" not in " ".join(r["summary"] for r in rows if r["event_type"] == "Webhook.Removed")
