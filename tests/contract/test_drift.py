"""Drift detection over the simulated vCenter, on every persistence: a change made behind
Stagekeeper's back is found in one cycle, recorded once, resolved when it goes away; adopt and
revert; orphan VMs (the same flow runs against vcsim in tests/integration/test_vcsim_drift.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import ConflictError, NotFoundError, ValidationError
from tests.support import machine, stages

NETWORKS = [{"name": "front"}]


def deployed(runtime: Runtime) -> tuple[UUID, UUID]:
    service = runtime.app.register_service("shop", "", stages("int", "prod"), actor="a").value
    configuration_id = runtime.app.create_configuration(
        service.id, "shop", "", NETWORKS, [machine("db"), machine("web")], actor="a"
    ).value.id
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return configuration_id, deployment_id


def vm_of(runtime: Runtime, deployment_id: UUID, name: str) -> str:
    return str(runtime.app.deployment(deployment_id).machine(name)["vm_id"])


def drift_kinds(runtime: Runtime, deployment_id: UUID) -> list[str]:
    return [
        type(e).__qualname__.split(".")[-1]
        for e in runtime.app.repository.event_store.get(deployment_id)
        if "Drift" in type(e).__qualname__
    ]


def open_drift(runtime: Runtime, deployment_id: UUID) -> dict[str, Any]:
    return {f"{d['machine']}.{d['field']}": d for d in runtime.app.deployment(deployment_id).view()["drift"]}


def test_a_deployment_that_matches_vcenter_has_no_drift(runtime: Runtime) -> None:
    _, deployment_id = deployed(runtime)
    report = runtime.drift_check.run_cycle()
    assert (report.deployments, report.events, report.vms) == (1, 0, 2)
    assert runtime.app.deployment(deployment_id).view()["drifted"] is False


def test_memory_changed_behind_its_back_is_detected_in_one_cycle_once(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    _, deployment_id = deployed(runtime)
    vcenter.power_off(vm_of(runtime, deployment_id, "db"))
    vcenter.reconfigure(vm_of(runtime, deployment_id, "db"), 2, 4096, ())
    runtime.drift_check.run_cycle()
    found = open_drift(runtime, deployment_id)
    assert found["db.memory_mib"]["expected"] == 2048
    assert found["db.memory_mib"]["actual"] == 4096
    assert found["db.power"]["actual"] == "poweredOff"
    runtime.drift_check.run_cycle()  # the same difference is not recorded again
    assert drift_kinds(runtime, deployment_id) == ["DriftDetected", "DriftDetected"]
    runtime.catch_up()
    drifted = runtime.read_models.deployments(drifted=True)
    assert [d["id"] for d in drifted] == [str(deployment_id)]
    assert runtime.read_models.deployments(drifted=False) == []


def test_revert_puts_memory_back_and_the_next_check_resolves_it(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    _, deployment_id = deployed(runtime)
    db = vm_of(runtime, deployment_id, "db")
    vcenter.enable_hot_add(db)
    vcenter.reconfigure(db, 2, 3072, ())
    runtime.app.check_drift(deployment_id, actor="bob")
    runtime.app.revert_drift(deployment_id, "db.memory_mib", actor="bob", reason="not approved")
    assert open_drift(runtime, deployment_id)["db.memory_mib"]["reverting"] is True
    runtime.catch_up()  # the process manager reconfigures the VM (power-cycled: a shrink)
    assert vcenter.hardware(db)[1] == 2048
    assert vcenter.power_state(db) == "poweredOn"
    runtime.drift_check.run_cycle()
    assert open_drift(runtime, deployment_id) == {}
    assert drift_kinds(runtime, deployment_id) == [
        "DriftDetected", "DriftRevertRequested", "DriftReverted", "DriftResolved"
    ]  # fmt: skip


def test_adopt_records_a_configuration_version_with_the_new_memory(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    configuration_id, deployment_id = deployed(runtime)
    db = vm_of(runtime, deployment_id, "db")
    vcenter.enable_hot_add(db)
    vcenter.reconfigure(db, 2, 8192, ())
    runtime.drift_check.run_cycle()
    before = runtime.app.configuration(configuration_id).version
    with pytest.raises(ValidationError):
        runtime.app.adopt_drift(deployment_id, "db.memory_mib", actor="bob", reason=None)
    runtime.app.adopt_drift(deployment_id, "db.memory_mib", actor="bob", reason="the DBA sized it")
    configuration = runtime.app.configuration(configuration_id)
    assert configuration.version == before + 1
    assert configuration.machine("db")["memory_mib"] == 8192
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.configuration_version == configuration.version
    assert deployment.machine("db")["spec"]["memory_mib"] == 8192
    assert open_drift(runtime, deployment_id) == {}
    runtime.drift_check.run_cycle()
    assert open_drift(runtime, deployment_id) == {}


def test_a_deleted_vm_is_drift_and_cannot_be_adopted(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    _, deployment_id = deployed(runtime)
    web = vm_of(runtime, deployment_id, "web")
    vcenter.power_off(web)
    vcenter.destroy(web)
    runtime.drift_check.run_cycle()
    assert open_drift(runtime, deployment_id)["web.vm"]["actual"] is None
    with pytest.raises(ValidationError):
        runtime.app.adopt_drift(deployment_id, "web.vm", actor="bob", reason="gone")
    with pytest.raises(NotFoundError):
        runtime.app.revert_drift(deployment_id, "db.memory_mib", actor="bob", reason=None)


def test_adopting_needs_the_configuration_version_the_deployment_runs(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    configuration_id, deployment_id = deployed(runtime)
    vcenter.enable_hot_add(vm_of(runtime, deployment_id, "db"))
    vcenter.reconfigure(vm_of(runtime, deployment_id, "db"), 4, 2048, ())
    runtime.drift_check.run_cycle()
    runtime.app.change_machine(configuration_id, "web", machine("web", cpus=3), actor="a")
    with pytest.raises(ConflictError):
        runtime.app.adopt_drift(deployment_id, "db.cpus", actor="bob", reason="bigger")


def test_orphans_are_tagged_vms_the_history_does_not_hold(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    _, deployment_id = deployed(runtime)
    stray = vcenter.add_existing_vm("stray", "/DC0/host/DC0_C0/Resources")
    vcenter.tag_vm(stray, UUID(int=7), "db")
    extra = vcenter.add_existing_vm("extra", "/DC0/host/DC0_C0/Resources")
    vcenter.tag_vm(extra, deployment_id, "cache")
    found = {o["name"]: o["reason"] for o in runtime.app.drift_orphans()}
    assert found == {
        "stray": "no such deployment in the history",
        "extra": "its deployment has no machine 'cache'",
    }
