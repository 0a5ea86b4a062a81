"""Fenced deployments and copies over the simulated vCenter, on every persistence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import ConflictError, NotFoundError, ValidationError
from domain.names import NameClaim
from domain.processes.fencing import NAT_KEY
from tests.fencing import SWITCH, three_tier
from tests.support import runtime_for


def fenced(runtime: Runtime, configuration_id: UUID, stage: str = "test") -> UUID:
    deployment_id = runtime.app.deploy(configuration_id, stage, actor="alice", fence=True).value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return deployment_id


def own_portgroups(vcenter: SimulatedVCenter, deployment_id: UUID) -> set[str]:
    return {p.name for p in vcenter.list_portgroups(SWITCH) if p.name.startswith(f"sk-{deployment_id.hex[:12]}-")}


def test_two_fenced_deployments_keep_identical_addresses_on_their_own_networks(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    configuration_id = three_tier(runtime)
    first, second = fenced(runtime, configuration_id), fenced(runtime, configuration_id)
    a, b = runtime.app.deployment(first), runtime.app.deployment(second)
    for name in ("web", "app", "db"):
        assert a.machine(name)["addressing"] == b.machine(name)["addressing"]  # same IP and MACs
    fences = [a.fence_view(), b.fence_view()]
    assert all(f is not None for f in fences)
    vlans = [n["vlan"] for f in fences if f for n in f["networks"]]
    assert len(set(vlans)) == 4  # two networks each, VLANs unique
    assert own_portgroups(vcenter, first) == {f"sk-{first.hex[:12]}-front", f"sk-{first.hex[:12]}-back"}
    keys = {p.name: p.key for p in vcenter.list_portgroups(SWITCH)}
    vms = {(vm.deployment_id, vm.machine): vm for vm in vcenter.all_vms()}
    for deployment_id in (first, second):
        app_nics = vcenter.vm_nics(vms[(deployment_id, "app")].vm_id)
        prefix = f"sk-{deployment_id.hex[:12]}"
        assert [n.portgroup_key for n in app_nics] == [keys[f"{prefix}-front"], keys[f"{prefix}-back"]]
        gateway = vms[(deployment_id, "_fence-gateway")]
        assert gateway.powered_on
        assert [n.network for n in vcenter.vm_nics(gateway.vm_id)] == [
            f"{prefix}-front", f"{prefix}-back", "VM Network"
        ]  # fmt: skip
        nat = json.loads(vcenter.extra_config(gateway.vm_id)[NAT_KEY])["nat"]
        assert {n["machine"] for n in nat} == {"web", "app", "db"}
    externals = [n["external_ip"] for f in fences if f for n in f["nat"]]
    externals += [f["gateway"]["external_ip"] for f in fences if f]
    assert len(set(externals)) == len(externals) == 8
    assert {n["internal_ip"] for n in fences[0]["nat"]} == {n["internal_ip"] for n in fences[1]["nat"]}  # type: ignore[index]


def test_undeploying_one_fence_leaves_the_other_and_releases_vlans_and_addresses(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    configuration_id = three_tier(runtime)
    first, second = fenced(runtime, configuration_id), fenced(runtime, configuration_id)
    before = vcenter.find_vms(second)
    released = runtime.app.deployment(first).fence_view()
    runtime.app.undeploy(first, actor="alice")
    runtime.catch_up()
    assert runtime.app.deployment(first).state == "undeployed"
    assert vcenter.find_vms(first) == []
    assert own_portgroups(vcenter, first) == set()
    assert vcenter.find_vms(second) == before
    assert len(own_portgroups(vcenter, second)) == 2
    # The VLANs and external addresses are free again (released in the Undeployed write).
    assert released is not None
    held = [("vlan", SWITCH, str(n["vlan"])) for n in released["networks"]]
    held += [("ip", "ipv4", n["external_ip"]) for n in released["nat"]]
    held += [("ip", "ipv4", released["gateway"]["external_ip"])]
    for kind, scope, name in held:
        claim: object = runtime.app.repository.get(NameClaim.id_for(kind, scope, name))
        assert isinstance(claim, NameClaim)
        assert claim.owner_id is None, (kind, name)


def test_fencing_needs_a_stage_with_fence_settings(runtime: Runtime) -> None:
    configuration_id = three_tier(runtime)
    service_id = runtime.app.configuration(configuration_id).service_id
    runtime.app.add_stage(service_id, {"name": "plain", "resource_pool": "/DC0/host/DC0_C0/Resources/pl"}, None, "a")
    with pytest.raises(ValidationError) as refused:
        runtime.app.deploy(configuration_id, "plain", actor="alice", fence=True)
    assert refused.value.field == "fence"
    with pytest.raises(ValidationError):
        runtime.app.deploy(configuration_id, "test", actor="alice", fence="yes")


def test_a_stage_that_always_fences_fences_every_deployment(runtime: Runtime) -> None:
    configuration_id = three_tier(runtime, fence="always")
    deployment_id = runtime.app.deploy(configuration_id, "test", actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).fence is not None


def test_copies_of_a_running_deployment_are_fenced_exact_copies(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    configuration_id = three_tier(runtime)
    production = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    runtime.catch_up()
    source = runtime.app.deployment(production)
    copies = [runtime.app.copy_deployment(production, "test", actor="bob", fence=True).value.id for _ in range(3)]
    runtime.catch_up()
    sources = {vm.machine: vm for vm in vcenter.find_vms(production)}
    for copy_id in copies:
        copy = runtime.app.deployment(copy_id)
        assert copy.state == "deployed"
        assert copy.copy_view() == {
            "deployment_id": str(production), "stage": "prod", "configuration_version": 1, "linked": False
        }  # fmt: skip
        for machine in copy.machines:
            assert machine["addressing"] == source.machine(machine["name"])["addressing"]
            assert machine["copied_from"] == sources[machine["name"]].name
        vms = {vm.machine: vm for vm in vcenter.find_vms(copy_id)}
        assert vms["web"].ip == sources["web"].ip
        assert vms["web"].macs == sources["web"].macs


def test_a_linked_copy_is_cloned_from_a_snapshot_of_each_source(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    configuration_id = three_tier(runtime, copy_mode="linked")
    production = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    runtime.catch_up()
    copy_id = runtime.app.copy_deployment(production, "test", actor="bob", fence=True).value.id
    runtime.catch_up()
    assert runtime.app.deployment(copy_id).state == "deployed"
    for vm in vcenter.find_vms(production):
        assert vcenter.list_snapshots(vm.vm_id) == [f"sk-copy-{copy_id.hex[:12]}"]


def test_a_linked_copys_snapshots_go_when_the_copy_is_undeployed(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    configuration_id = three_tier(runtime, copy_mode="linked")
    production = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    runtime.catch_up()
    first, second = (runtime.app.copy_deployment(production, "test", actor="bob", fence=True).value.id for _ in "ab")
    runtime.catch_up()
    runtime.app.undeploy(first, actor="bob")
    runtime.catch_up()
    for vm in vcenter.find_vms(production):  # the other copy still hangs on its own snapshot
        assert vcenter.list_snapshots(vm.vm_id) == [f"sk-copy-{second.hex[:12]}"]
    recorded: list[Any] = list(runtime.app.repository.event_store.get(first))
    names = [type(e).__qualname__.split(".")[-1] for e in recorded]
    removed = [e.machine for e in recorded if type(e).__qualname__.endswith("CopySnapshotRemoved")]
    assert sorted(removed) == ["app", "db", "web"]
    assert names.index("CopySnapshotRemoved") > max(i for i, n in enumerate(names) if n == "MachineDestroyed")
    assert names[-1] == "Undeployed"
    runtime.app.undeploy(second, actor="bob")
    runtime.catch_up()
    assert all(vcenter.list_snapshots(vm.vm_id) == [] for vm in vcenter.find_vms(production))


def test_a_full_copy_leaves_no_snapshot_on_its_source(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    configuration_id = three_tier(runtime)
    production = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    runtime.catch_up()
    runtime.app.copy_deployment(production, "test", actor="bob", fence=True)
    runtime.catch_up()
    assert all(vcenter.list_snapshots(vm.vm_id) == [] for vm in vcenter.find_vms(production))


def test_only_a_deployed_deployment_can_be_copied(runtime: Runtime) -> None:
    configuration_id = three_tier(runtime)
    production = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    with pytest.raises(ConflictError):
        runtime.app.copy_deployment(production, "test", actor="bob")


def test_a_snapshot_and_a_revert_cover_every_machine(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    configuration_id = three_tier(runtime)
    deployment_id = fenced(runtime, configuration_id)
    runtime.app.snapshot_deployment(deployment_id, "before patch", actor="bob", reason="patch 42")
    with pytest.raises(ConflictError):  # one snapshot operation at a time
        runtime.app.snapshot_deployment(deployment_id, "other", actor="bob")
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.snapshots == ("before patch",)
    assert deployment.snapshot_work is None
    machines = [vm for vm in vcenter.find_vms(deployment_id) if vm.machine != "_fence-gateway"]
    assert all(vcenter.list_snapshots(vm.vm_id) == ["before patch"] for vm in machines)
    with pytest.raises(ConflictError):
        runtime.app.snapshot_deployment(deployment_id, "before patch", actor="bob")
    vcenter.power_off(machines[0].vm_id)  # "a change"
    runtime.app.revert_deployment(deployment_id, "before patch", actor="bob")
    runtime.catch_up()
    assert all(vm.powered_on for vm in vcenter.find_vms(deployment_id))
    kinds = [type(e).__qualname__ for e in runtime.app.repository.event_store.get(deployment_id)]
    assert kinds.count("Deployment.MachineSnapshotDone") == 6
    assert kinds.count("Deployment.SnapshotWorkEnded") == 2
    with pytest.raises(NotFoundError):
        runtime.app.revert_deployment(deployment_id, "never taken", actor="bob")


def test_a_tested_copy_swaps_into_production_and_back(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    configuration_id = three_tier(runtime)
    production = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    runtime.catch_up()
    copy_id = runtime.app.copy_deployment(production, "test", actor="bob", fence=True).value.id
    runtime.catch_up()
    copy_fence = runtime.app.deployment(copy_id).fence_view()
    assert copy_fence is not None
    runtime.app.snapshot_deployment(copy_id, "clean", actor="bob")
    runtime.catch_up()
    runtime.app.revert_deployment(copy_id, "clean", actor="bob")
    runtime.catch_up()
    runtime.app.swap_deployment(copy_id, production, actor="petra", keep_previous=True, reason="patch 42 tested")
    assert runtime.app.deployment(production).state == "swapping"
    with pytest.raises(ConflictError):
        runtime.app.undeploy(production, actor="petra")
    runtime.catch_up()
    copy, previous = runtime.app.deployment(copy_id), runtime.app.deployment(production)
    assert (copy.state, copy.stage, copy.fence, copy.replaced) == ("deployed", "prod", None, str(production))
    assert (previous.state, previous.replaced_by) == ("deployed", str(copy_id))
    prod_pool = previous.resource_pool
    vms = {vm.machine: vm for vm in vcenter.find_vms(copy_id)}
    assert set(vms) == {"web", "app", "db"}  # the gateway is gone
    assert all(vm.powered_on and vm.resource_pool == prod_pool for vm in vms.values())
    assert [n.network for n in vcenter.vm_nics(vms["app"].vm_id)] == ["front", "back"]
    assert all(not vm.powered_on for vm in vcenter.find_vms(production))
    assert own_portgroups(vcenter, copy_id) == set()
    owner: object = runtime.app.repository.get(NameClaim.id_for("ip", "ipv4", copy.machine("web")["addressing"]["ip"]))
    assert isinstance(owner, NameClaim)
    assert owner.owner_id == uuid5(copy_id, "web")  # the production address's claim moved to the copy
    service = runtime.app.service(copy.service_id)
    assert str(copy_id) in service.live_deployments("prod")
    assert str(copy_id) not in service.live_deployments("test")

    runtime.app.swap_back(production, actor="petra", reason="rollback")
    runtime.catch_up()
    copy, previous = runtime.app.deployment(copy_id), runtime.app.deployment(production)
    assert (previous.state, previous.replaced) == ("deployed", str(copy_id))
    assert (copy.state, copy.replaced_by) == ("deployed", str(production))
    assert all(vm.powered_on for vm in vcenter.find_vms(production))
    assert all(not vm.powered_on for vm in vcenter.find_vms(copy_id))
    owner = runtime.app.repository.get(owner.id)
    assert isinstance(owner, NameClaim)
    assert owner.owner_id == uuid5(production, "web")


def test_a_swap_without_keeping_the_previous_undeploys_it(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    configuration_id = three_tier(runtime)
    production = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    runtime.catch_up()
    copy_id = runtime.app.copy_deployment(production, "test", actor="bob", fence=True).value.id
    runtime.catch_up()
    runtime.app.swap_deployment(copy_id, production, actor="petra", keep_previous=False)
    runtime.catch_up()
    assert runtime.app.deployment(production).state == "undeployed"
    assert vcenter.find_vms(production) == []
    copy = runtime.app.deployment(copy_id)
    claim: object = runtime.app.repository.get(NameClaim.id_for("ip", "ipv4", copy.machine("db")["addressing"]["ip"]))
    assert isinstance(claim, NameClaim)
    assert claim.owner_id == uuid5(copy_id, "db")  # not released by the previous one's undeploy
    with pytest.raises(ConflictError):  # nothing kept: nothing to swap back to
        runtime.app.swap_back(production, actor="petra")


def test_only_a_copy_of_the_replaced_deployment_can_swap_in(runtime: Runtime) -> None:
    configuration_id = three_tier(runtime)
    one = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    other = runtime.app.deploy(configuration_id, "test", actor="alice").value.id
    runtime.catch_up()
    with pytest.raises(ConflictError):
        runtime.app.swap_deployment(other, one, actor="petra")
    with pytest.raises(ValidationError):
        runtime.app.swap_deployment(one, one, actor="petra")


def test_a_stage_learns_to_fence_and_forgets_it(runtime: Runtime) -> None:
    configuration_id = three_tier(runtime)
    service_id = runtime.app.configuration(configuration_id).service_id
    runtime.app.add_stage(service_id, {"name": "uat", "resource_pool": "/DC0/host/DC0_C0/Resources/uat"}, None, "a")
    settings = {"dvswitch": SWITCH, "vlan_range": {"first": 900, "last": 909},
                "fence_gateway_template": "tpl-ubuntu-2404", "external_network": "VM Network"}  # fmt: skip
    runtime.app.update_stage(service_id, "uat", settings, actor="a", reason="fences for uat")
    assert runtime.app.service(service_id).stage("uat")["vlan_range"] == {"first": 900, "last": 909}
    runtime.app.update_stage(service_id, "uat", {"fence": "always"}, actor="a")  # the rest stays
    deployment_id = runtime.app.deploy(configuration_id, "uat", actor="alice").value.id
    runtime.catch_up()
    fence = runtime.app.deployment(deployment_id).fence_view()
    assert fence is not None
    assert all(900 <= n["vlan"] <= 909 for n in fence["networks"])
    with pytest.raises(ValidationError):
        runtime.app.update_stage(service_id, "uat", {"dvswitch": None}, actor="a")  # half a fence
    cleared = dict.fromkeys(("dvswitch", "vlan_range", "fence_gateway_template", "external_network"))
    runtime.app.update_stage(service_id, "uat", {**cleared, "fence": "optional"}, actor="a")
    assert "dvswitch" not in runtime.app.service(service_id).stage("uat")


def test_the_services_read_model_shows_changed_fence_settings(runtime: Runtime) -> None:
    configuration_id = three_tier(runtime)
    service_id = runtime.app.configuration(configuration_id).service_id
    runtime.app.update_stage(service_id, "test", {"fence": "always", "copy_mode": "linked"}, actor="a")
    runtime.catch_up()
    [listed] = [s for s in runtime.read_models.services(False) if s["id"] == str(service_id)]
    test = next(s for s in listed["stages"] if s["name"] == "test")
    assert (test["fence"], test["copy_mode"], test["dvswitch"]) == ("always", "linked", SWITCH)


class DyingAfterSnapshotRemoval(SimulatedVCenter):
    """Removes one snapshot, then dies (like a killed worker) before the step is recorded."""

    def remove_snapshot(self, vm_id: str, name: str) -> bool:
        super().remove_snapshot(vm_id, name)
        raise SystemExit("worker killed")


def test_a_worker_killed_while_removing_copy_snapshots_finishes_on_restart(database_url: str, tmp_path: Path) -> None:
    if database_url == "memory://":
        pytest.skip("events in memory do not survive the worker")
    inventory = tmp_path / "vcenter.json"
    first = runtime_for(database_url, vcenter=SimulatedVCenter(state_file=inventory))
    first.app.import_templates(None, True, actor="admin")
    configuration_id = three_tier(first, copy_mode="linked")
    production = first.app.deploy(configuration_id, "prod", actor="alice").value.id
    first.catch_up()
    copy_id = first.app.copy_deployment(production, "test", actor="bob", fence=True).value.id
    first.catch_up()
    first.close()
    second = runtime_for(database_url, vcenter=DyingAfterSnapshotRemoval(state_file=inventory))
    second.app.undeploy(copy_id, actor="bob")
    with pytest.raises(SystemExit):
        second.catch_up()
    second.close()
    survivor = SimulatedVCenter(state_file=inventory)
    third = runtime_for(database_url, vcenter=survivor)
    third.catch_up()
    assert third.app.deployment(copy_id).state == "undeployed"
    assert sorted(third.app.deployment(copy_id).copy_snapshots_removed) == ["app", "db", "web"]
    assert all(survivor.list_snapshots(vm.vm_id) == [] for vm in survivor.find_vms(production))
    third.close()
