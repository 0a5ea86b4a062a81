"""Restore behind a fence over the simulated vCenter, on every persistence: the archived machines come
back beside the live source with the same IPs and MACs, their NICs on the restore's own port groups,
a gateway with the NAT map; an unfenced restore over the live addresses still fails naming the clash."""

from __future__ import annotations

import json
from contextlib import suppress
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import ValidationError, VCenterFaultError
from domain.processes.fencing import NAT_KEY
from tests.fencing import SWITCH, three_tier


@pytest.fixture
def source_id(runtime: Runtime) -> UUID:
    deployment_id = runtime.app.deploy(three_tier(runtime), "prod", actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return deployment_id


def archived(runtime: Runtime, deployment_id: UUID) -> UUID:
    archive_id = runtime.app.archive_now(deployment_id, actor="alice", consistency="snapshot").value.id
    runtime.catch_up()
    archive = runtime.app.archive(archive_id)
    assert archive.state == "complete", archive.failure
    return archive_id


def restored(runtime: Runtime, archive_id: UUID, fence: bool) -> dict[str, object]:
    runtime.app.restore_archive(archive_id, "test", fence, actor="bob", reason="side by side")
    runtime.catch_up()
    (restore,) = runtime.app.archive(archive_id).restores.values()
    return restore


def test_a_fenced_restore_runs_beside_its_live_source_with_the_same_addresses_on_its_own_networks(
    runtime: Runtime, vcenter: SimulatedVCenter, source_id: UUID
) -> None:
    restore = restored(runtime, archived(runtime, source_id), fence=True)
    assert restore["state"] == "restored", restore.get("failure")
    source = runtime.app.deployment(source_id)
    copy = runtime.app.deployment(UUID(str(restore["deployment_id"])))
    assert source.state == copy.state == "deployed"
    fence = copy.fence_view()
    assert fence is not None
    prefix = f"sk-{copy.id.hex[:12]}"
    assert {n["portgroup"] for n in fence["networks"]} == {f"{prefix}-front", f"{prefix}-back"}
    keys = {p.name: p.key for p in vcenter.list_portgroups(SWITCH)}
    assert {f"{prefix}-front", f"{prefix}-back"} <= set(keys)
    vlans = {p.name: p.vlan for p in vcenter.list_portgroups(SWITCH)}
    assert {vlans[n["portgroup"]] for n in fence["networks"]} == {n["vlan"] for n in fence["networks"]}
    vms = {vm.vm_id: vm for vm in vcenter.all_vms()}
    for name in ("web", "app", "db"):
        ours, theirs = copy.machine(name), source.machine(name)
        assert ours["addressing"]["ip"] == theirs["addressing"]["ip"]
        assert vms[ours["vm_id"]].powered_on
        assert vms[theirs["vm_id"]].powered_on
        nics = vcenter.vm_nics(ours["vm_id"])
        assert [n.mac for n in nics] == [n.mac for n in vcenter.vm_nics(theirs["vm_id"])]
        assert [n.portgroup_key for n in nics] == [keys[f"{prefix}-{m['network']}"] for m in ours["addressing"]["macs"]]
    gateway = next(vm for vm in vcenter.find_vms(copy.id) if vm.machine == "_fence-gateway")
    assert copy.fence is not None
    assert copy.fence["gateway"]["vm_id"] == gateway.vm_id
    assert gateway.powered_on
    nat = json.loads(vcenter.extra_config(gateway.vm_id)[NAT_KEY])["nat"]
    assert {n["machine"] for n in nat} == {"web", "app", "db"}
    assert {n["internal_ip"] for n in nat} == {source.machine(m)["addressing"]["ip"] for m in ("web", "app", "db")}


def test_undeploying_a_fenced_restore_removes_its_gateway_and_port_groups_and_leaves_the_source(
    runtime: Runtime, vcenter: SimulatedVCenter, source_id: UUID
) -> None:
    restore = restored(runtime, archived(runtime, source_id), fence=True)
    copy_id = UUID(str(restore["deployment_id"]))
    runtime.app.undeploy(copy_id, actor="bob")
    runtime.catch_up()
    assert runtime.app.deployment(copy_id).state == "undeployed"
    assert vcenter.find_vms(copy_id) == []
    assert not [p for p in vcenter.list_portgroups(SWITCH) if p.name.startswith(f"sk-{copy_id.hex[:12]}-")]
    vms = {vm.vm_id: vm for vm in vcenter.all_vms()}
    assert all(vms[m["vm_id"]].powered_on for m in runtime.app.deployment(source_id).machines)


def test_an_unfenced_restore_beside_its_live_source_fails_naming_the_clash(runtime: Runtime, source_id: UUID) -> None:
    restore = restored(runtime, archived(runtime, source_id), fence=False)
    assert restore["state"] == "failed"
    assert "MAC" in str(restore["failure"])
    assert "is held by" in str(restore["failure"])


def test_a_fenced_restore_into_a_stage_without_fencing_is_refused_naming_the_field(
    runtime: Runtime, source_id: UUID
) -> None:
    archive_id = archived(runtime, source_id)
    service_id = runtime.app.deployment(source_id).service_id
    dev = {"name": "dev", "resource_pool": "/DC0/host/DC0_C0/Resources/dev"}
    runtime.app.add_stage(service_id, dev, None, actor="a")
    with pytest.raises(ValidationError) as error:
        runtime.app.restore_archive(archive_id, "dev", True, actor="bob")
    assert error.value.field == "fence"


def test_a_fenced_restores_vms_cannot_be_let_go(runtime: Runtime, source_id: UUID) -> None:
    restore = restored(runtime, archived(runtime, source_id), fence=True)
    with pytest.raises(ValidationError) as error:
        runtime.app.undeploy(UUID(str(restore["deployment_id"])), actor="bob", destroy_vms=False)
    assert error.value.field == "destroy_vms"


def test_a_fenced_restore_whose_gateway_failed_is_finished_when_the_event_is_retried(
    runtime: Runtime, vcenter: SimulatedVCenter, source_id: UUID
) -> None:
    archive_id = archived(runtime, source_id)
    vcenter.inject_fault("clone", "host busy")  # the gateway's clone, after the Restored write
    runtime.app.restore_archive(archive_id, "test", True, actor="bob")
    with suppress(VCenterFaultError):  # the follower leaves the event to be retried
        runtime.catch_up()
    (restore,) = runtime.app.archive(archive_id).restores.values()
    copy_id = UUID(str(restore["deployment_id"]))
    fence = runtime.app.deployment(copy_id).fence
    assert fence is not None
    assert fence["gateway"]["vm_id"] is None
    runtime.catch_up()
    fence = runtime.app.deployment(copy_id).fence
    assert fence is not None
    assert fence["gateway"]["vm_id"] is not None
    assert [vm.machine for vm in vcenter.find_vms(copy_id)].count("_fence-gateway") == 1
