"""Deployments and the process manager over the simulated vCenter, on every persistence."""

from __future__ import annotations

import threading
from pathlib import Path
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from tests.support import ROOT_POOL, THREE_TIER, stages


@pytest.fixture
def configuration_id(runtime: Runtime) -> UUID:
    service = runtime.app.register_service("payroll", "", stages("int", "test", "prod"), actor="a").value
    return runtime.app.create_configuration(service.id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a").value.id


def deployed(runtime: Runtime, configuration_id: UUID, stage: str = "int") -> UUID:
    deployment_id = runtime.app.deploy(configuration_id, stage, actor="alice", reason="release 7").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return deployment_id


def pools(vcenter: SimulatedVCenter, deployment_id: UUID) -> set[str]:
    return {vm.resource_pool for vm in vcenter.find_vms(deployment_id)}


def test_a_deployment_builds_every_machine_in_the_stage_pool(
    runtime: Runtime, vcenter: SimulatedVCenter, configuration_id: UUID
) -> None:
    deployment_id = deployed(runtime, configuration_id)
    deployment = runtime.app.deployment(deployment_id)
    vms = vcenter.find_vms(deployment_id)
    assert sorted(vm.machine or "" for vm in vms) == ["app1", "db1", "web1", "web2"]
    assert pools(vcenter, deployment_id) == {f"{ROOT_POOL}/int-pool"}
    assert all(vm.powered_on and vm.ip for vm in vms)
    assert {m["state"] for m in deployment.machines} == {"provisioned"}
    assert deployment.requested_by == "alice"


def test_promote_and_demote_move_the_vms_between_stage_pools(
    runtime: Runtime, vcenter: SimulatedVCenter, configuration_id: UUID
) -> None:
    deployment_id = deployed(runtime, configuration_id)
    runtime.app.promote(deployment_id, actor="bob", reason="tests green")
    assert runtime.app.deployment(deployment_id).state == "promoting"
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).stage == "test"
    assert pools(vcenter, deployment_id) == {f"{ROOT_POOL}/test-pool"}
    runtime.app.demote(deployment_id, actor="bob")
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert (deployment.stage, deployment.state) == ("int", "deployed")
    assert pools(vcenter, deployment_id) == {f"{ROOT_POOL}/int-pool"}


def test_a_promotion_to_a_pool_on_another_cluster_reclones_and_retires_the_sources(
    runtime: Runtime, vcenter: SimulatedVCenter, configuration_id: UUID
) -> None:
    deployment_id = deployed(runtime, configuration_id)
    service_id = runtime.app.deployment(deployment_id).service_id
    runtime.app.update_stage(service_id, "test", {"resource_pool": "/DC0/host/DC0_H0/Resources/test"}, actor="a")
    before = {vm.machine: vm for vm in vcenter.find_vms(deployment_id)}
    runtime.app.promote(deployment_id, actor="a")
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert (deployment.state, deployment.stage) == ("deployed", "test")
    after = {vm.machine: vm for vm in vcenter.find_vms(deployment_id)}
    assert sorted(after, key=str) == sorted(before, key=str)
    for name, vm in after.items():
        assert vm.resource_pool == "/DC0/host/DC0_H0/Resources/test"
        assert vm.vm_id != before[name].vm_id
        assert vm.powered_on
        assert (vm.ip, vm.macs) == (before[name].ip, before[name].macs)
        assert deployment.machine(str(name))["vm_id"] == vm.vm_id


def test_promoting_past_the_last_or_demoting_before_the_first_stage_is_refused(
    runtime: Runtime, configuration_id: UUID
) -> None:
    first = deployed(runtime, configuration_id, "int")
    last = deployed(runtime, configuration_id, "prod")
    head = runtime.app.head()
    with pytest.raises(InvalidTransitionError, match="first stage"):
        runtime.app.demote(first, actor="a")
    with pytest.raises(InvalidTransitionError, match="last stage"):
        runtime.app.promote(last, actor="a")
    assert runtime.app.head() == head


def test_undeploy_destroys_every_vm_and_frees_the_stage(
    runtime: Runtime, vcenter: SimulatedVCenter, configuration_id: UUID
) -> None:
    deployment_id = deployed(runtime, configuration_id)
    runtime.app.undeploy(deployment_id, actor="a", reason="done")
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "undeployed"
    assert vcenter.find_vms(deployment_id) == []
    assert runtime.app.service(deployment.service_id).live_deployments("int") == []
    with pytest.raises(InvalidTransitionError):
        runtime.app.undeploy(deployment_id, actor="a")


def test_deploy_refusals(runtime: Runtime, configuration_id: UUID) -> None:
    with pytest.raises(NotFoundError):
        runtime.app.deploy(configuration_id, "nope", actor="a")
    with pytest.raises(ValidationError) as error:
        runtime.app.deploy(configuration_id, "int", actor="a", configuration_version=9)
    assert error.value.field == "configuration_version"
    service_id = runtime.app.configuration(configuration_id).service_id
    empty = runtime.app.create_configuration(service_id, "empty", "", [], [], actor="a").value.id
    with pytest.raises(ConflictError, match="no machines"):
        runtime.app.deploy(empty, "int", actor="a")


def test_a_vcenter_fault_fails_the_deployment_cleans_up_and_a_retry_succeeds(
    runtime: Runtime, vcenter: SimulatedVCenter, configuration_id: UUID
) -> None:
    vcenter.inject_fault("power_on", "InsufficientResourcesFault: not enough memory")
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="a").value.id
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "failed"
    assert "InsufficientResourcesFault" in (deployment.failure or "")
    assert vcenter.find_vms(deployment_id) == []
    runtime.app.retry_deployment(deployment_id, actor="a")
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    assert len(vcenter.find_vms(deployment_id)) == 4


def test_a_deployment_of_an_old_version_uses_that_versions_machines(
    runtime: Runtime, vcenter: SimulatedVCenter, configuration_id: UUID
) -> None:
    runtime.app.remove_machine(configuration_id, "web2", actor="a")
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="a", configuration_version=1).value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).configuration_version == 1
    assert len(vcenter.find_vms(deployment_id)) == 4


def test_renaming_a_stage_carries_its_live_deployments_along(runtime: Runtime, configuration_id: UUID) -> None:
    deployment_id = deployed(runtime, configuration_id, "int")
    service_id = runtime.app.deployment(deployment_id).service_id
    runtime.app.update_stage(service_id, "int", {"name": "integration"}, actor="a")
    assert runtime.app.deployment(deployment_id).stage == "integration"
    runtime.app.promote(deployment_id, actor="a")
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).stage == "test"
    rows = runtime.read_models.deployments(service_id=str(service_id))
    assert [r["stage"] for r in rows] == ["test"]


def test_two_concurrent_promotes_of_one_deployment_have_exactly_one_winner(
    runtime: Runtime, configuration_id: UUID
) -> None:
    deployment_id = deployed(runtime, configuration_id)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def promote() -> None:
        barrier.wait()
        try:
            runtime.app.promote(deployment_id, actor=threading.current_thread().name)
            results.append("won")
        except ConflictError as error:
            results.append(type(error).__name__)

    threads = [threading.Thread(target=promote, name=f"user{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results)[-1] == "won"
    assert results.count("won") == 1
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).stage == "test"


class CrashingVCenter(SimulatedVCenter):
    """Dies (like a killed worker) after a number of clones."""

    def __init__(self, state_file: Path, crash_after: int) -> None:
        super().__init__(state_file=state_file)
        self.crash_after = crash_after
        self.clones = 0

    def clone(self, spec):  # type: ignore[no-untyped-def]
        self.clones += 1
        if self.clones > self.crash_after:
            raise SystemExit("worker killed")
        return super().clone(spec)


def test_a_worker_killed_mid_deploy_resumes_without_duplicates(database_url: str, tmp_path: Path) -> None:
    if database_url == "memory://":
        pytest.skip("events in memory do not survive the worker")
    from tests.support import machine, runtime_for

    # Both drivers share one persisted inventory: the same vCenter seen by two worker lives.
    inventory = tmp_path / "vcenter.json"
    crashing = CrashingVCenter(inventory, crash_after=5)
    first = runtime_for(database_url, vcenter=crashing)
    first.app.import_templates(None, True, actor="a")
    service_id = first.app.register_service("s", "", stages("int"), actor="a").value.id
    machines = [machine(f"m{i:02d}") for i in range(12)]
    configuration_id = first.app.create_configuration(
        service_id, "c", "", [{"name": "front"}], machines, actor="a"
    ).value.id
    deployment_id = first.app.deploy(configuration_id, "int", actor="a").value.id
    first.process.parallel_tasks = 1
    with pytest.raises(SystemExit):
        first.catch_up()
    first.close()
    survivor = SimulatedVCenter(state_file=inventory)
    assert len(survivor.find_vms(deployment_id)) == 5  # what the dead worker left behind
    second = runtime_for(database_url, vcenter=survivor)
    second.catch_up()
    assert second.app.deployment(deployment_id).state == "deployed"
    assert len(survivor.find_vms(deployment_id)) == 12
    assert len({vm.name for vm in survivor.all_vms()}) == 12
    second.close()
