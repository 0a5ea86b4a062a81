"""Upgrade in place of a fenced deployment: a network the new version brings gets its own port
group and VLAN before machines are rewired; a dropped one goes after the machines and the gateway
left it (over the simulated vCenter, on every persistence; on vcsim in
tests/integration/test_vcsim_fenced_upgrades.py)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from adapters.runtime import Runtime
from domain.names import NameClaim
from domain.ports import VCenterDriver
from domain.processes.fencing import NAT_KEY
from tests.fencing import SWITCH, three_tier
from tests.support import machine

# v2: "front" goes (web with it), "mgmt" comes: db gains a NIC on it, a new machine lives on it.
V2_NETWORKS = [{"name": "back"}, {"name": "mgmt"}]
V2_MACHINES = [
    machine("app", nics=[{"network": "back"}]),
    machine("db", nics=[{"network": "back"}, {"network": "mgmt"}]),
    machine("cache", nics=[{"network": "mgmt"}]),
]


def fenced_v1_then_v2(runtime: Runtime) -> tuple[UUID, UUID]:
    configuration_id = three_tier(runtime)
    deployment_id = runtime.app.deploy(configuration_id, "test", actor="alice", fence=True).value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    runtime.app.revise_configuration(
        configuration_id, {"networks": V2_NETWORKS, "machines": V2_MACHINES}, actor="alice"
    )
    return configuration_id, deployment_id


def portgroups(vcenter: VCenterDriver, deployment_id: UUID) -> dict[str, str]:
    prefix = f"sk-{deployment_id.hex[:12]}-"
    return {p.name: p.key for p in vcenter.list_portgroups(SWITCH) if p.name.startswith(prefix)}


def vlan_owner(runtime: Runtime, vlan: int) -> UUID | None:
    claim: Any = runtime.app.repository.get(NameClaim.id_for("vlan", SWITCH, str(vlan)))
    assert isinstance(claim, NameClaim)
    return claim.owner_id


def check_fenced_upgrade(runtime: Runtime, vcenter: VCenterDriver, deployment_id: UUID) -> None:
    """What a fenced v1 -> v2 upgrade must leave (shared with the vcsim test)."""
    before = runtime.app.deployment(deployment_id).fence_view()
    assert before is not None
    front_vlan = next(n["vlan"] for n in before["networks"] if n["network"] == "front")
    runtime.app.upgrade_deployment(deployment_id, 2, actor="alice")
    runtime.catch_up()
    after = runtime.app.deployment(deployment_id)
    assert (after.state, after.configuration_version) == ("deployed", 2), after.failure
    fence = after.fence_view()
    assert fence is not None
    prefix = f"sk-{deployment_id.hex[:12]}"
    assert [(n["network"], n["portgroup"]) for n in fence["networks"]] == [
        ("back", f"{prefix}-back"), ("mgmt", f"{prefix}-mgmt")
    ]  # fmt: skip
    mgmt_vlan = fence["networks"][1]["vlan"]
    assert mgmt_vlan not in {n["vlan"] for n in before["networks"]}
    keys = portgroups(vcenter, deployment_id)
    assert set(keys) == {f"{prefix}-back", f"{prefix}-mgmt"}  # front's port group is gone
    assert vlan_owner(runtime, front_vlan) is None  # released
    assert vlan_owner(runtime, mgmt_vlan) is not None  # claimed
    vms = {vm.machine: vm for vm in vcenter.find_vms(deployment_id)}
    assert set(vms) == {"app", "db", "cache", "_fence-gateway"}
    for name, nets in (("app", ["back"]), ("db", ["back", "mgmt"]), ("cache", ["mgmt"])):
        assert [n.portgroup_key for n in vcenter.vm_nics(vms[name].vm_id)] == [keys[f"{prefix}-{n}"] for n in nets]
    assert {n["machine"] for n in fence["nat"]} == {"app", "db", "cache"}  # web unmapped, cache mapped
    db = after.machine("db")["addressing"]["macs"]
    assert [n["network"] for n in db] == ["back", "mgmt"]
    assert [n.mac for n in vcenter.vm_nics(vms["db"].vm_id)] == [n["mac"] for n in db]
    gateway = vms["_fence-gateway"].vm_id
    assert [n.portgroup_key for n in vcenter.vm_nics(gateway)][:2] == [keys[f"{prefix}-back"], keys[f"{prefix}-mgmt"]]
    assert len(vcenter.vm_nics(gateway)) == 3  # and its outside NIC
    recorded: list[Any] = list(runtime.app.repository.event_store.get(deployment_id))
    names = [type(e).__qualname__.split(".")[-1] for e in recorded]
    assert names.index("FenceNetworkAdded") < names.index("MachineNicsChanged")
    assert names.index("FenceNetworkRemoved") > max(i for i, n in enumerate(names) if n == "MachineRemoved")
    runtime.app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    assert portgroups(vcenter, deployment_id) == {}
    assert vlan_owner(runtime, mgmt_vlan) is None


def test_a_fenced_upgrade_gives_a_new_network_its_port_group_and_drops_the_old_one(runtime: Runtime) -> None:
    _, deployment_id = fenced_v1_then_v2(runtime)
    check_fenced_upgrade(runtime, runtime.vcenter, deployment_id)


def test_the_gateway_is_told_its_new_inside_networks(runtime: Runtime) -> None:
    _, deployment_id = fenced_v1_then_v2(runtime)
    runtime.app.upgrade_deployment(deployment_id, 2, actor="alice")
    runtime.catch_up()
    gateway = next(vm for vm in runtime.vcenter.find_vms(deployment_id) if vm.machine == "_fence-gateway")
    simulated: Any = runtime.vcenter
    document = json.loads(simulated.extra_config(gateway.vm_id)[NAT_KEY])
    prefix = f"sk-{deployment_id.hex[:12]}"
    assert [n["portgroup"] for n in document["inside"]] == [f"{prefix}-back", f"{prefix}-mgmt"]
