"""A fenced upgrade keeps the NAT map true (review findings 4 and 8): a machine it adds with an IP
gets an external address of the stage's pool (claimed in the same write as FenceNatAdded), a machine
it removes loses its entry and its external address (released in the same write as MachineRemoved),
and the gateway's NAT input says so. Over the simulated vCenter, on every persistence."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.commands.addresses import IP_CLAIMS, IPV4_SCOPE
from domain.commands.fencing import external_owner
from domain.names import NameClaim
from domain.processes.fencing import NAT_KEY
from tests.contract.test_fenced_upgrades import fenced_v1_then_v2


def ip_owner(runtime: Runtime, ip: str) -> UUID | None:
    claim: Any = runtime.app.repository.get(NameClaim.id_for(IP_CLAIMS, IPV4_SCOPE, ip))
    assert isinstance(claim, NameClaim)
    return claim.owner_id


def event_names(runtime: Runtime, deployment_id: UUID) -> list[str]:
    return [type(e).__qualname__.split(".")[-1] for e in runtime.app.repository.event_store.get(deployment_id)]


def test_an_upgrade_maps_the_machine_it_adds_and_unmaps_the_one_it_removes(runtime: Runtime) -> None:
    _, deployment_id = fenced_v1_then_v2(runtime)  # v2: web goes, cache comes (with an IP)
    before = runtime.app.deployment(deployment_id).fence_view()
    assert before is not None
    web_external = next(n["external_ip"] for n in before["nat"] if n["machine"] == "web")
    runtime.app.upgrade_deployment(deployment_id, 2, actor="alice")
    runtime.catch_up()
    after = runtime.app.deployment(deployment_id)
    assert (after.state, after.configuration_version) == ("deployed", 2), after.failure
    fence = after.fence_view()
    assert fence is not None
    nat = {n["machine"]: n for n in fence["nat"]}
    assert set(nat) == {"app", "db", "cache"}
    cache = nat["cache"]
    assert cache["internal_ip"] == after.machine("cache")["addressing"]["ip"]
    assert ip_owner(runtime, cache["external_ip"]) == external_owner(deployment_id, "cache")
    assert cache["external_ip"] not in {n["external_ip"] for n in before["nat"]} | {fence["gateway"]["external_ip"]}
    assert ip_owner(runtime, web_external) is None  # released
    names = event_names(runtime, deployment_id)
    assert names.index("FenceNatRemoved") == names.index("MachineRemoved") - 1  # one write
    assert names.index("FenceNatAdded") < names.index("Upgraded")
    gateway = next(vm for vm in runtime.vcenter.find_vms(deployment_id) if vm.machine == "_fence-gateway")
    simulated: Any = runtime.vcenter
    document = json.loads(simulated.extra_config(gateway.vm_id)[NAT_KEY])
    assert {n["machine"]: n["external_ip"] for n in document["nat"]} == {m: n["external_ip"] for m, n in nat.items()}
    runtime.app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    assert ip_owner(runtime, cache["external_ip"]) is None  # released with Undeployed


def test_mapping_an_added_machine_again_after_a_restart_changes_nothing(runtime: Runtime) -> None:
    _, deployment_id = fenced_v1_then_v2(runtime)
    runtime.app.upgrade_deployment(deployment_id, 2, actor="alice")
    # A worker killed after the NAT write and before the clone runs the step again on restart.
    runtime.app.assign_addresses(deployment_id, "stagekeeper")
    runtime.app.record_upgrade_nat(deployment_id, "stagekeeper")
    first = runtime.app.deployment(deployment_id).fence_view()
    runtime.app.record_upgrade_nat(deployment_id, "stagekeeper")
    assert runtime.app.deployment(deployment_id).fence_view() == first
    runtime.catch_up()
    fence = runtime.app.deployment(deployment_id).fence_view()
    assert fence is not None
    assert first is not None
    assert [n for n in fence["nat"] if n["machine"] == "cache"] == [n for n in first["nat"] if n["machine"] == "cache"]
    assert event_names(runtime, deployment_id).count("FenceNatAdded") == 1


def test_a_failed_upgrade_unmaps_the_machine_it_could_not_add(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    _, deployment_id = fenced_v1_then_v2(runtime)
    vcenter.inject_fault("clone", "no space left on datastore")
    runtime.app.upgrade_deployment(deployment_id, 2, actor="alice")
    runtime.catch_up()
    after = runtime.app.deployment(deployment_id)
    assert after.failure is not None
    assert "no space left" in after.failure
    fence = after.fence_view()
    assert fence is not None
    assert "cache" not in {n["machine"] for n in fence["nat"]}
    names = event_names(runtime, deployment_id)
    assert names.index("FenceNatAdded") < names.index("FenceNatRemoved", names.index("FenceNatAdded"))
    added: Any = next(e for e in runtime.app.repository.event_store.get(deployment_id) if hasattr(e, "external_ip"))
    assert added.machine == "cache"
    assert ip_owner(runtime, added.external_ip) is None  # released with UpgradeFailed
