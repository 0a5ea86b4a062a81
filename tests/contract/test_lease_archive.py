"""A lease whose stage says "archive": the deployment is archived first (by the lease), then
undeployed once the archive is complete; a failed archive leaves it running. Every persistence."""

from __future__ import annotations

from uuid import UUID

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.archive import Archive
from tests.contract.test_leases import clock, deployed, runtime, service_with, tick
from tests.support import FixedClock

__all__ = ["clock", "runtime"]  # the fixtures of test_leases.py, on every persistence


def archives_of(runtime: Runtime, deployment_id: UUID) -> list[Archive]:
    return runtime.app._archives_of(lambda a: a.deployment_id == deployment_id)


def test_an_archive_policy_archives_then_undeploys(
    runtime: Runtime, vcenter: SimulatedVCenter, clock: FixedClock
) -> None:
    _, configuration_id = service_with(runtime, {"on_expiry": "archive"})
    deployment_id = deployed(runtime, configuration_id, lease="PT2H")
    clock.advance(hours=3)
    assert tick(runtime) == [("expire", "lease")]
    for _ in range(4):  # the archive process: archive, complete, then the undeploy
        runtime.catch_up()
    [archive] = archives_of(runtime, deployment_id)
    assert archive.state == "complete"
    assert archive.requested_by == "stagekeeper:lease"
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "undeployed"
    assert vcenter.find_vms(deployment_id) == []
    events = [type(e).__name__ for e in runtime.app.repository.event_store.get(deployment_id)]
    assert events.index("LeaseExpired") < events.index("UndeployRequested")
    # Met again (a restart replaying the events), nothing is archived twice.
    runtime.catch_up()
    assert len(archives_of(runtime, deployment_id)) == 1


def test_a_failed_archive_keeps_the_deployment(runtime: Runtime, vcenter: SimulatedVCenter, clock: FixedClock) -> None:
    _, configuration_id = service_with(runtime, {"on_expiry": "archive"})
    deployment_id = deployed(runtime, configuration_id, lease="PT2H")
    vcenter.inject_fault("power_off", "InvalidPowerState: busy", count=50)
    clock.advance(hours=3)
    assert tick(runtime) == [("expire", "lease")]
    for _ in range(3):
        runtime.catch_up()
    [archive] = archives_of(runtime, deployment_id)
    assert archive.state == "failed"
    assert runtime.app.deployment(deployment_id).state == "deployed"
    assert vcenter.find_vms(deployment_id)
