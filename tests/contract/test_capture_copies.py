"""A captured deployment behaves like any other, over the simulated vCenter on every persistence:
fenced copies with production's MACs, the swap (kept, let go of, destroyed), upgrade in place, and
deploying its configuration from templates refused up front."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import ConflictError, ValidationError
from tests.fencing import SWITCH, fenced_stage
from tests.support import ROOT_POOL, stages

# A port group whose name is no display name: the configuration network is "prod-db net".
PORT_GROUP = "prod/db net"
MACS = ("00:0c:29:00:00:11", "00:0c:29:00:00:12")


@pytest.fixture
def service_id(runtime: Runtime) -> UUID:
    test = fenced_stage("test", 700, "10.81.0.0/24")
    return runtime.app.register_service("erp", "", [test, *stages("prod")], actor="alice").value.id


@pytest.fixture
def captured(runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID) -> UUID:
    for name, mac in zip(("ERP_DB", "ERP_APP"), MACS, strict=True):
        nics = [{"network": PORT_GROUP, "mac": mac, "adapter": "vmxnet3"}]
        vcenter.add_existing_vm(name, ROOT_POOL, cpus=2, memory_mib=4096, nics=nics)
    outcome = runtime.app.capture(service_id, "prod", "erp", actor="alice", vms=["ERP_DB", "ERP_APP"])
    assert outcome.value.deployment is not None
    runtime.catch_up()
    return outcome.value.deployment.id


def fenced_copy(runtime: Runtime, source: UUID) -> UUID:
    copy_id = runtime.app.copy_deployment(source, "test", actor="bob", fence=True, reason="patch").value.id
    runtime.catch_up()
    copy = runtime.app.deployment(copy_id)
    assert copy.state == "deployed", copy.failure
    return copy_id


def vms_of(vcenter: SimulatedVCenter, deployment_id: UUID) -> dict[str | None, Any]:
    return {vm.machine: vm for vm in vcenter.all_vms() if vm.deployment_id == deployment_id}


def test_a_fenced_copy_clones_the_captured_vms_with_their_macs_on_its_own_port_groups(
    runtime: Runtime, vcenter: SimulatedVCenter, captured: UUID
) -> None:
    copy_id = fenced_copy(runtime, captured)
    source = runtime.app.deployment(captured)
    own = f"sk-{copy_id.hex[:12]}-prod-db net"
    keys = {p.name: p.key for p in vcenter.list_portgroups(SWITCH)}
    copied = vms_of(vcenter, copy_id)
    for machine in source.machines:
        nics = vcenter.vm_nics(copied[machine["name"]].vm_id)
        assert [n.mac for n in nics] == [n.mac for n in vcenter.vm_nics(machine["vm_id"])]
        assert [n.portgroup_key for n in nics] == [keys[own]]
    assert runtime.app.deployment(copy_id).machine("erp-db")["copied_from"] == "ERP_DB"


@pytest.mark.parametrize(("destroy_vms", "left"), [(None, "released"), (False, "released"), (True, "destroyed")])
def test_a_swap_that_does_not_keep_a_captured_deployment_lets_go_of_its_vms_unless_destroy_vms(
    runtime: Runtime, vcenter: SimulatedVCenter, captured: UUID, destroy_vms: bool | None, left: str
) -> None:
    adopted = {m["vm_id"] for m in runtime.app.deployment(captured).machines}
    copy_id = fenced_copy(runtime, captured)
    runtime.app.swap_deployment(copy_id, captured, actor="alice", keep_previous=False, destroy_vms=destroy_vms)
    runtime.catch_up()
    copy = runtime.app.deployment(copy_id)
    assert (copy.state, copy.stage, copy.fence) == ("deployed", "prod", None)
    # Out of the fence, the copy's NICs are on the port group the captured network came from.
    for vm in vms_of(vcenter, copy_id).values():
        assert [n.network for n in vcenter.vm_nics(vm.vm_id)] == [PORT_GROUP]
    previous = runtime.app.deployment(captured)
    assert previous.state == "undeployed"
    assert {m["state"] for m in previous.machines} == {left}
    remaining = {vm.vm_id: vm for vm in vcenter.all_vms() if vm.vm_id in adopted}
    if left == "destroyed":
        assert remaining == {}
    else:  # let go of: still there, untagged, powered off by the swap
        assert sorted(remaining) == sorted(adopted)
        assert all(vm.deployment_id in (None, "") and not vm.powered_on for vm in remaining.values())


def test_swap_and_swap_back_keep_a_captured_deployment_and_its_vms_where_they_are(
    runtime: Runtime, vcenter: SimulatedVCenter, captured: UUID
) -> None:
    copy_id = fenced_copy(runtime, captured)
    runtime.app.swap_deployment(copy_id, captured, actor="alice", keep_previous=True)
    runtime.catch_up()
    assert not any(vm.powered_on for vm in vms_of(vcenter, captured).values())
    runtime.app.swap_back(captured, actor="alice")
    runtime.catch_up()
    back = runtime.app.deployment(captured)
    assert (back.state, back.replaced) == ("deployed", str(copy_id))
    assert {m["resource_pool"] for m in back.machines} == {ROOT_POOL}
    assert all(vm.powered_on and vm.resource_pool == ROOT_POOL for vm in vms_of(vcenter, captured).values())


def test_destroy_vms_is_refused_where_it_means_nothing(runtime: Runtime, captured: UUID) -> None:
    copy_id = fenced_copy(runtime, captured)
    with pytest.raises(ValidationError, match="only with keep_previous false") as refused:
        runtime.app.swap_deployment(copy_id, captured, actor="alice", keep_previous=True, destroy_vms=True)
    assert refused.value.field == "destroy_vms"
    with pytest.raises(ValidationError, match="true or false"):
        runtime.app.swap_deployment(copy_id, captured, actor="alice", keep_previous=False, destroy_vms="yes")
    assert runtime.app.deployment(captured).state == "deployed"


def test_deploying_a_captured_configuration_from_templates_is_refused_naming_the_machine(
    runtime: Runtime, captured: UUID
) -> None:
    configuration_id = runtime.app.deployment(captured).configuration_id
    with pytest.raises(ConflictError, match="machine 'erp-app' of configuration 'erp' was captured from VM ERP_APP"):
        runtime.app.deploy(configuration_id, "test", actor="alice")
    with pytest.raises(ConflictError, match="copy the captured deployment instead"):
        runtime.app.deploy(configuration_id, "test", actor="alice", fence=True)


def test_a_captured_machine_is_resized_in_place(runtime: Runtime, vcenter: SimulatedVCenter, captured: UUID) -> None:
    deployment = runtime.app.deployment(captured)
    configuration = runtime.app.configuration(deployment.configuration_id)
    machines = [{**m, "cpus": 4} if m["name"] == "erp-db" else m for m in configuration.machines]
    revised = runtime.app.revise_configuration(configuration.id, {"machines": machines}, actor="alice").value
    runtime.app.upgrade_deployment(captured, revised.version, actor="alice", reason="more CPU")
    runtime.catch_up()
    upgraded = runtime.app.deployment(captured)
    assert upgraded.state == "deployed", upgraded.failure
    db = next(m for m in upgraded.machines if m["name"] == "erp-db")
    assert next(v for v in vcenter.all_vms() if v.vm_id == db["vm_id"]).cpus == 4
    assert db["vm_id"] == db["captured_vm_id"]  # the adopted VM itself, not a new one


def test_a_revision_keeps_captured_machines_and_checks_every_other_template(runtime: Runtime, captured: UUID) -> None:
    configuration = runtime.app.configuration(runtime.app.deployment(captured).configuration_id)
    kept = [dict(m) for m in configuration.machines]  # as read back, with `captured`
    renamed = {**kept[1], "template": "ERP_DB_OLD"}  # no longer its VM: a catalogue template is needed
    with pytest.raises(ValidationError, match="'ERP_DB_OLD' is not in the template catalogue") as refused:
        runtime.app.revise_configuration(configuration.id, {"machines": [kept[0], renamed]}, actor="alice")
    assert refused.value.field == "machines[1].template"
    resized = [{**m, "memory_mib": 8192} for m in kept]
    revised = runtime.app.revise_configuration(configuration.id, {"machines": resized}, actor="alice").value
    assert [m["captured"]["vm_name"] for m in revised.machines] == [m["captured"]["vm_name"] for m in kept]


def test_an_unfenced_copy_gets_addresses_of_its_own(
    runtime: Runtime, vcenter: SimulatedVCenter, captured: UUID
) -> None:
    copy_id = runtime.app.copy_deployment(captured, "test", actor="bob", reason="try").value.id
    runtime.catch_up()
    copy = runtime.app.deployment(copy_id)
    assert copy.state == "deployed", copy.failure
    production = {n.mac for m in runtime.app.deployment(captured).machines for n in vcenter.vm_nics(m["vm_id"])}
    copied = {n.mac for vm in vms_of(vcenter, copy_id).values() for n in vcenter.vm_nics(vm.vm_id)}
    assert len(copied) == 2
    assert copied.isdisjoint(production)  # no fence: the copy must not reuse production's MACs
