"""How the process manager writes a deployment's steps: several machines in one write, Deployed
with the last of them, and steps decided on the deployment in hand only while it is the stored one."""

from __future__ import annotations

from functools import partial
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from domain.application import Saved
from domain.deployment import Deployment
from domain.errors import InvalidTransitionError
from tests.support import THREE_TIER, machine, stages

PROVISIONED = "stagekeeper:Deployment.MachineProvisioned"
DEPLOYED = "stagekeeper:Deployment.Deployed"
STARTED = "stagekeeper:Deployment.ProvisioningStarted"
ADDRESSED = "stagekeeper:Deployment.AddressesAssigned"
PLACED = "stagekeeper:Deployment.MachinePlaced"
FAILED = "stagekeeper:Deployment.ProvisioningFailed"


@pytest.fixture
def configuration_id(runtime: Runtime) -> UUID:
    service = runtime.app.register_service("payroll", "", stages("int"), actor="a").value
    return runtime.app.create_configuration(service.id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a").value.id


def test_a_deployment_is_completed_in_the_write_of_its_last_machines(runtime: Runtime, configuration_id: UUID) -> None:
    writes: list[Saved] = []
    runtime.app.on_commit(writes.append)
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    recorded = [w.topics for w in writes if deployment_id in w.originator_ids and PROVISIONED in w.topics]
    assert sum(t.count(PROVISIONED) for t in recorded) == len(THREE_TIER)
    # Deployed is not a write of its own: it goes with the last machines finished.
    assert [t for t in recorded if DEPLOYED in t] == [recorded[-1]]
    assert not [w for w in writes if w.topics == (DEPLOYED,)]


def test_a_step_on_a_stale_deployment_in_hand_is_decided_again_on_the_stored_one(
    runtime: Runtime, configuration_id: UUID
) -> None:
    app = runtime.app
    deployment_id = app.deploy(configuration_id, "int", actor="alice").value.id
    stale = app.deployment(deployment_id)
    app.record_step(deployment_id, partial(Deployment.start_provisioning, actor="worker-1"))
    seen: list[str] = []

    def fail(d: Deployment) -> None:
        seen.append(d.state)
        d.record_failure("vCenter went away", actor="worker-2")

    outcome = app.record_step(deployment_id, fail, in_hand=stale)
    assert seen == ["requested", "provisioning"]  # tried on the one in hand, then on the stored one
    stored = app.deployment(deployment_id)
    assert (stored.state, stored.version) == ("failed", outcome.value.version)


def test_a_step_the_stored_deployment_refuses_is_refused_even_if_the_one_in_hand_allows_it(
    runtime: Runtime, configuration_id: UUID
) -> None:
    app = runtime.app
    deployment_id = app.deploy(configuration_id, "int", actor="alice").value.id
    stale = app.deployment(deployment_id)
    app.record_step(deployment_id, partial(Deployment.start_provisioning, actor="worker-1"))
    with pytest.raises(InvalidTransitionError):
        app.record_step(deployment_id, partial(Deployment.start_provisioning, actor="worker-2"), in_hand=stale)
    started = [n for n in app.select_notifications(1, 1000) if n.topic.endswith("Deployment.ProvisioningStarted")]
    assert len(started) == 1  # one winner


def test_what_is_decided_before_the_first_clone_is_one_write(runtime: Runtime, configuration_id: UUID) -> None:
    writes: list[Saved] = []
    runtime.app.on_commit(writes.append)
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    mine = [w.topics for w in writes if deployment_id in w.originator_ids]
    # After the request: provisioning started, every machine's addresses and its place, together.
    first = mine[1]
    assert (first.count(STARTED), first.count(ADDRESSED), first.count(PLACED)) == (1, 4, 4)
    assert first.index(STARTED) < first.index(ADDRESSED) < first.index(PLACED)
    assert not [t for t in mine[2:] if {STARTED, ADDRESSED, PLACED} & set(t)]
    placed = [m["placement"] for m in runtime.app.deployment(deployment_id).machines]
    assert all(p is not None and p["host"] for p in placed)


def test_a_deployment_failing_before_its_first_write_is_recorded_started_then_failed(runtime: Runtime) -> None:
    app = runtime.app
    service_id = app.register_service("tiny", "", stages("int"), actor="a").value.id
    one = {"cidr": "10.60.0.0/29", "gateway": "10.60.0.1", "dns": [], "first": "10.60.0.2", "last": "10.60.0.2"}
    app.update_stage(service_id, "int", {"ip_pools": [one]}, actor="a")
    machines = [machine("a1"), machine("a2")]  # two addresses wanted, one in the pool
    configuration_id = app.create_configuration(service_id, "c", "", [{"name": "front"}], machines, actor="a")
    deployment_id = app.deploy(configuration_id.value.id, "int", actor="alice").value.id
    runtime.catch_up()
    failed = app.deployment(deployment_id)
    assert (failed.state, failed.failure) == ("failed", "stage int's IP pool 10.60.0.0/29 has no free address")
    topics = [n.topic for n in app.select_notifications(1, 10_000) if n.originator_id == deployment_id]
    assert [t for t in topics if t in (STARTED, ADDRESSED, PLACED, FAILED)] == [STARTED, FAILED]
    assert runtime.vcenter.find_vms(deployment_id) == []


def test_addresses_decided_on_a_stale_deployment_in_hand_are_decided_again_on_the_stored_one(
    runtime: Runtime, configuration_id: UUID
) -> None:
    app = runtime.app
    deployment_id = app.deploy(configuration_id, "int", actor="alice").value.id
    stale = app.deployment(deployment_id)
    app.record_step(deployment_id, partial(Deployment.start_provisioning, actor="worker-1"))
    seen: list[str] = []
    written = app.assign_addresses(deployment_id, "worker-2", in_hand=stale, after=lambda d: seen.append(d.state))
    assert seen == ["requested", "provisioning"]  # tried on the one in hand, then on the stored one
    stored = app.deployment(deployment_id)
    assert (stored.version, stored.state) == (written.version, "provisioning")
    assert all(m["addressing"] is not None for m in stored.machines)
    started = [n for n in app.select_notifications(1, 1000) if n.topic == STARTED and n.originator_id == deployment_id]
    assert len(started) == 1
