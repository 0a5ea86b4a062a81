"""Clones not looked up by name first (CloneSpec.fresh): only in the pass whose own write started the
deployment's first attempt, when no clone of it can have begun. Any later pass (a worker restarted
after that write, a retried deployment) looks for the VMs an earlier attempt made and adopts them.
The simulated driver, like vCenter, refuses a fresh clone whose name exists (DuplicateName)."""

from __future__ import annotations

from functools import partial
from uuid import UUID, uuid4

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.deployment import Deployment
from domain.errors import VCenterFaultError
from domain.ports import CloneSpec, VmInfo
from domain.processes.deployments import vm_name
from tests.support import THREE_TIER, stages


@pytest.fixture
def configuration_id(runtime: Runtime) -> UUID:
    service = runtime.app.register_service("payroll", "", stages("int"), actor="a").value
    return runtime.app.create_configuration(service.id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a").value.id


@pytest.fixture
def fresh_flags(vcenter: SimulatedVCenter, monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Each machine's CloneSpec.fresh, as the process manager asked for its clone."""
    seen: dict[str, bool] = {}
    clone = vcenter.clone

    def recorded(spec: CloneSpec) -> VmInfo:
        seen[spec.machine] = spec.fresh
        return clone(spec)

    monkeypatch.setattr(vcenter, "clone", recorded)
    return seen


def left_behind(vcenter: SimulatedVCenter, deployment_id: UUID, machine: str = "web1") -> str:
    """A VM an earlier attempt cloned for `machine` (tagged, named as the process manager names it)."""
    spec = CloneSpec(
        vm_name=vm_name(deployment_id, machine), template="tpl-ubuntu-2404", resource_pool="/DC0/host/DC0_C0/Resources",
        linked=True, cpus=2, memory_mib=2048, deployment_id=deployment_id, machine=machine,
    )  # fmt: skip
    return vcenter.clone(spec).vm_id


def test_the_first_attempts_first_pass_clones_without_looking(
    runtime: Runtime, configuration_id: UUID, fresh_flags: dict[str, bool]
) -> None:
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    assert fresh_flags == {m["name"]: True for m in THREE_TIER}


def test_a_pass_after_the_start_write_adopts_what_an_earlier_pass_cloned(
    runtime: Runtime, configuration_id: UUID, vcenter: SimulatedVCenter, fresh_flags: dict[str, bool]
) -> None:
    """A worker killed after the write that started provisioning: the next pass is not fresh."""
    app = runtime.app
    deployment_id = app.deploy(configuration_id, "int", actor="alice").value.id
    app.assign_addresses(deployment_id, "stagekeeper", before=partial(Deployment.start_provisioning, actor="worker"))
    earlier = left_behind(vcenter, deployment_id)
    runtime.catch_up()
    deployment = app.deployment(deployment_id)
    assert deployment.state == "deployed"
    assert deployment.machine("web1")["vm_id"] == earlier
    assert len(vcenter.find_vms(deployment_id)) == len(THREE_TIER)
    assert fresh_flags == {m["name"]: False for m in THREE_TIER}


def test_a_retried_deployment_adopts_what_its_failed_attempt_left(
    runtime: Runtime, configuration_id: UUID, vcenter: SimulatedVCenter, fresh_flags: dict[str, bool]
) -> None:
    """Its second attempt is started by a write too, but the first one's clean-up may have failed."""
    app = runtime.app
    deployment_id = app.deploy(configuration_id, "int", actor="alice").value.id
    app.record_step(deployment_id, partial(Deployment.start_provisioning, actor="worker"))
    app.record_step(deployment_id, lambda d: d.record_failure("vCenter went away", "worker"))
    earlier = left_behind(vcenter, deployment_id)  # clean-up failed: the VM stayed
    app.retry_deployment(deployment_id, actor="alice")
    runtime.catch_up()
    deployment = app.deployment(deployment_id)
    assert (deployment.state, deployment.attempt) == ("deployed", 2)
    assert deployment.machine("web1")["vm_id"] == earlier
    assert len(vcenter.find_vms(deployment_id)) == len(THREE_TIER)
    assert fresh_flags == {m["name"]: False for m in THREE_TIER}


def test_the_simulated_vcenter_refuses_a_fresh_clone_whose_name_exists(vcenter: SimulatedVCenter) -> None:
    deployment_id = uuid4()
    left_behind(vcenter, deployment_id)
    spec = CloneSpec(
        vm_name=vm_name(deployment_id, "web1"), template="tpl-ubuntu-2404", resource_pool="/DC0/host/DC0_C0/Resources",
        linked=True, cpus=2, memory_mib=2048, deployment_id=deployment_id, machine="web1", fresh=True,
    )  # fmt: skip
    with pytest.raises(VCenterFaultError, match="DuplicateName"):
        vcenter.clone(spec)
