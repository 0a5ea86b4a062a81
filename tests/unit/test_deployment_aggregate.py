"""The Deployment aggregate's state machine, given/when/then, no I/O."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.deployment import Deployment
from domain.errors import InvalidTransitionError
from tests.support import machine


def given_requested() -> Deployment:
    return Deployment(
        service_id=uuid4(),
        configuration_id=uuid4(),
        configuration_version=3,
        configuration_name="c",
        stage="int",
        resource_pool="/DC0/host/C/Resources/int",
        networks=[{"name": "front"}],
        machines=[machine("web1"), machine("db1")],
        actor="alice",
        reason="release",
    )


def given_deployed() -> Deployment:
    deployment = given_requested()
    deployment.start_provisioning("pm")
    for name in ("web1", "db1"):
        deployment.record_machine_provisioned(name, f"vm-{name}", f"id-{name}", "10.0.0.1", None, "pm")
    deployment.mark_deployed("pm")
    return deployment


def test_every_event_carries_the_actor_and_reason() -> None:
    deployment = given_requested()
    [requested] = deployment.collect_events()
    assert (requested.actor, requested.reason) == ("alice", "release")  # type: ignore[attr-defined]


def test_a_deployment_is_only_deployed_once_every_machine_is_provisioned() -> None:
    deployment = given_requested()
    deployment.start_provisioning("pm")
    deployment.record_machine_provisioned("web1", "vm", "id", None, None, "pm")
    with pytest.raises(InvalidTransitionError, match="db1"):
        deployment.mark_deployed("pm")


def test_a_move_updates_stage_and_pool_only_when_complete() -> None:
    deployment = given_deployed()
    deployment.request_move("test", "/DC0/host/C/Resources/test", "promote", "bob", None)
    assert (deployment.state, deployment.stage) == ("promoting", "int")
    deployment.complete_move("pm")
    assert (deployment.state, deployment.stage, deployment.resource_pool) == (
        "deployed",
        "test",
        "/DC0/host/C/Resources/test",
    )


def test_a_rolled_back_move_leaves_the_deployment_where_it_was() -> None:
    deployment = given_deployed()
    deployment.request_move("test", "/p/test", "promote", "bob", None)
    deployment.record_machine_moved("web1", "/p/test", "pm")
    deployment.record_move_failure("relocate failed", rolled_back=True, actor="pm")
    assert (deployment.state, deployment.stage) == ("deployed", "int")
    assert deployment.machine("web1")["resource_pool"] == "/DC0/host/C/Resources/int"


@pytest.mark.parametrize(
    "command",
    [
        lambda d: d.request_move("x", "/p", "promote", "a", None),
        lambda d: d.retry("a", None),
        lambda d: d.mark_undeployed("pm"),
        lambda d: d.complete_move("pm"),
    ],
)
def test_commands_out_of_order_are_refused(command: object) -> None:
    deployment = given_requested()
    with pytest.raises(InvalidTransitionError):
        command(deployment)  # type: ignore[operator]


def test_a_failure_can_be_retried_and_counts_attempts() -> None:
    deployment = given_requested()
    deployment.record_failure("clone failed: NoDiskSpace", "pm")
    assert (deployment.state, deployment.failure) == ("failed", "clone failed: NoDiskSpace")
    deployment.retry("alice", "disk freed")
    assert (deployment.state, deployment.attempt, deployment.failure) == ("requested", 2, None)


def test_the_process_manager_gives_up_on_a_deployment_that_never_progresses() -> None:
    from typing import Any

    from domain.processes.deployments import MAX_PASSES, DeploymentProcess

    class StuckApp:
        """Every step is refused, as if a bug made the state machine reject its own step."""

        passes = 0

        def deployment(self, _: Any) -> Deployment:
            StuckApp.passes += 1
            return given_requested()

        def record_step(self, *_: Any, **__: Any) -> None:
            raise InvalidTransitionError("refused")

        def assign_addresses(self, *_: Any, **__: Any) -> None:  # the first write of a pass
            raise InvalidTransitionError("refused")

    process = DeploymentProcess(StuckApp(), vcenter=None, parallel_tasks=1)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="no progress"):
        process.drive(uuid4())
    assert StuckApp.passes == MAX_PASSES


def test_the_process_manager_drives_once_for_the_events_of_a_deployment_it_found_at_rest() -> None:
    """Events written in one commit (a restored deployment's Requested and Captured) come back one by
    one: the drive of the first finds the deployment at rest on a version that includes the others,
    which are not driven again; a later event is."""
    from typing import Any

    from domain.processes.deployments import DeploymentProcess

    deployment = given_deployed()
    events = deployment.collect_events()
    reads: list[int] = []

    class RestingApp:
        def deployment(self, _: Any) -> Deployment:
            reads.append(deployment.version)
            return deployment

    process = DeploymentProcess(RestingApp(), vcenter=None, parallel_tasks=1)  # type: ignore[arg-type]
    for event in events[:-1]:  # Deployed ends a provisioning pass: never driven
        process.handle(event)
    assert reads == [len(events)]  # one drive, at rest on the last version
    deployment.request_undeploy("alice", None)
    [later] = deployment.collect_events()
    deployment.mark_undeployed("pm")  # what the later drive finds: at rest again
    process.handle(later)
    assert len(reads) == 2
