"""Upgrade in place, whole-deployment power and start order, over the simulated vCenter, on every
persistence (the same process manager drives vcsim in tests/integration/test_vcsim_upgrades.py)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import InvalidTransitionError, ValidationError
from domain.ports import CloneSpec, VmInfo
from tests.support import machine, runtime_for, stages

NETWORKS = [{"name": "front"}, {"name": "back"}]
V1 = [
    machine("db", start_order={"group": 0, "delay_seconds": 20}),
    machine("app", start_order={"group": 1}),
    machine("web", start_order={"group": 2}),
]


def versions(runtime: Runtime, restricted: tuple[str, ...] = ()) -> UUID:
    """A configuration at v1 (3 tiers), v2 (+ cache), v3 (app resized: 4 CPUs, 4 GiB)."""
    service_id = runtime.app.register_service("shop", "", stages("int", "prod", restricted=restricted), actor="a")
    configuration_id = runtime.app.create_configuration(
        service_id.value.id, "shop", "", NETWORKS, V1, actor="a"
    ).value.id
    runtime.app.add_machine(configuration_id, machine("cache", start_order={"group": 1}), actor="a")
    runtime.app.change_machine(configuration_id, "app", machine("app", cpus=4, memory_mib=4096), actor="a")
    return configuration_id


def deployed(runtime: Runtime, configuration_id: UUID, version: int = 1, stage: str = "int") -> UUID:
    deployment_id = runtime.app.deploy(
        configuration_id, stage, actor="alice", reason="r", configuration_version=version
    ).value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return deployment_id


def vms(vcenter: SimulatedVCenter, deployment_id: UUID) -> dict[str, VmInfo]:
    return {vm.machine or "": vm for vm in vcenter.find_vms(deployment_id)}


def events(runtime: Runtime, deployment_id: UUID) -> list[Any]:
    return list(runtime.app.repository.event_store.get(deployment_id))


def topics(runtime: Runtime, deployment_id: UUID) -> list[str]:
    return [type(e).__qualname__.split(".")[-1] for e in events(runtime, deployment_id)]


@pytest.fixture
def slept(runtime: Runtime) -> list[float]:
    waits: list[float] = []
    runtime.process.sleep = waits.append
    return waits


def test_deploy_starts_machines_in_start_order_waiting_between_groups(
    runtime: Runtime, vcenter: SimulatedVCenter, slept: list[float]
) -> None:
    deployment_id = deployed(runtime, versions(runtime))
    provisioned = [e.machine for e in events(runtime, deployment_id) if hasattr(e, "vm_id")]
    assert provisioned == ["db", "app", "web"]
    assert slept == [20.0]
    assert all(vm.powered_on for vm in vms(vcenter, deployment_id).values())


def test_upgrade_from_v1_to_v3_touches_only_the_added_and_the_resized_machine(
    runtime: Runtime, vcenter: SimulatedVCenter, slept: list[float]
) -> None:
    configuration_id = versions(runtime)
    deployment_id = deployed(runtime, configuration_id)
    before = vms(vcenter, deployment_id)
    outcome = runtime.app.upgrade_deployment(deployment_id, 3, actor="bob", reason="patch 12")
    assert outcome.value.state == "upgrading"
    assert outcome.value.view()["target_version"] == 3
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert (deployment.state, deployment.configuration_version, deployment.failure) == ("deployed", 3, None)
    assert [m["name"] for m in deployment.machines] == ["db", "app", "web", "cache"]
    after = vms(vcenter, deployment_id)
    assert sorted(after) == ["app", "cache", "db", "web"]
    for name in ("db", "web"):
        assert after[name] == before[name]
        assert vcenter.hardware(after[name].vm_id) == vcenter.hardware(before[name].vm_id)
    assert after["app"].vm_id == before["app"].vm_id
    assert (after["app"].cpus, after["app"].memory_mib, after["app"].powered_on) == (4, 4096, True)
    assert after["cache"].powered_on
    assert after["cache"].macs
    steps = Counter(topics(runtime, deployment_id))
    assert steps["MachineReconfigured"] == 1
    assert steps["Upgraded"] == 1
    assert steps["MachineProvisioned"] == 4  # three on deploy, the cache on upgrade
    reconfigured = next(e for e in events(runtime, deployment_id) if hasattr(e, "power_cycled"))
    assert reconfigured.power_cycled is True
    assert reconfigured.before["cpus"] == 2
    assert reconfigured.after["cpus"] == 4


def test_downgrade_removes_the_added_machine_and_releases_its_addresses(
    runtime: Runtime, vcenter: SimulatedVCenter, slept: list[float]
) -> None:
    configuration_id = versions(runtime)
    deployment_id = deployed(runtime, configuration_id, version=3)
    cache_mac = runtime.app.deployment(deployment_id).machine("cache")["addressing"]["macs"][0]
    runtime.app.upgrade_deployment(deployment_id, 1, actor="bob")
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert (deployment.state, deployment.configuration_version) == ("deployed", 1)
    assert sorted(vms(vcenter, deployment_id)) == ["app", "db", "web"]
    assert vms(vcenter, deployment_id)["app"].cpus == 2
    assert "MachineRemoved" in topics(runtime, deployment_id)
    claim = runtime.app.release_name("mac", cache_mac["network"], cache_mac["mac"])
    assert claim is not None
    assert claim.owner_id is None


def test_nic_and_disk_changes_are_applied_in_place(
    runtime: Runtime, vcenter: SimulatedVCenter, slept: list[float]
) -> None:
    configuration_id = versions(runtime)
    deployment_id = deployed(runtime, configuration_id)
    first_mac = vms(vcenter, deployment_id)["web"].macs[0]
    wider = machine("web", nics=[{"network": "front"}, {"network": "back"}], disks=[{"size_gib": 30}, {"size_gib": 5}])
    runtime.app.change_machine(configuration_id, "web", {**wider, "start_order": {"group": 2}}, actor="a")
    runtime.app.upgrade_deployment(deployment_id, 4, actor="bob")
    runtime.catch_up()
    web = vms(vcenter, deployment_id)["web"]
    assert runtime.app.deployment(deployment_id).state == "deployed"
    assert web.macs[0] == first_mac
    assert len(web.macs) == 2
    assert vcenter.hardware(web.vm_id)[2] == (30, 5)
    assert web.powered_on  # no CPU/memory change: no power cycle
    assert Counter(topics(runtime, deployment_id))["MachineNicsChanged"] == 1


def test_a_vcenter_refusal_is_recorded_with_its_message_and_the_half_added_machine_goes(
    runtime: Runtime, vcenter: SimulatedVCenter, slept: list[float]
) -> None:
    configuration_id = versions(runtime)
    deployment_id = deployed(runtime, configuration_id)
    vcenter.inject_fault("power_on", "InsufficientResourcesFault: not enough memory", count=1)
    runtime.app.upgrade_deployment(deployment_id, 2, actor="bob")
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed"
    assert deployment.configuration_version == 1
    assert "InsufficientResourcesFault" in (deployment.failure or "")
    assert [m["name"] for m in deployment.machines] == ["db", "app", "web"]
    assert sorted(vms(vcenter, deployment_id)) == ["app", "db", "web"]
    runtime.app.upgrade_deployment(deployment_id, 2, actor="bob")  # and it can be tried again
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).configuration_version == 2


def test_upgrade_refusals_name_the_field_or_the_rule(runtime: Runtime, slept: list[float]) -> None:
    configuration_id = versions(runtime, restricted=("prod",))
    deployment_id = deployed(runtime, configuration_id)
    with pytest.raises(ValidationError) as refused:
        runtime.app.upgrade_deployment(deployment_id, 9, actor="bob")
    assert refused.value.field == "version"
    with pytest.raises(ValidationError):
        runtime.app.upgrade_deployment(deployment_id, "2", actor="bob")
    with pytest.raises(InvalidTransitionError, match="already runs version 1"):
        runtime.app.upgrade_deployment(deployment_id, 1, actor="bob")
    runtime.app.change_machine(configuration_id, "db", machine("db", disks=[{"size_gib": 40}]), actor="a")  # v4
    bigger = deployed(runtime, configuration_id, version=4)
    with pytest.raises(InvalidTransitionError, match="shrink a disk"):
        runtime.app.upgrade_deployment(bigger, 1, actor="bob")
    in_prod = deployed(runtime, configuration_id, stage="prod")
    with pytest.raises(ValidationError) as unexplained:
        runtime.app.upgrade_deployment(in_prod, 2, actor="bob")
    assert unexplained.value.field == "reason"
    runtime.app.upgrade_deployment(in_prod, 2, actor="bob", reason="CHG-1")
    with pytest.raises(InvalidTransitionError):  # one upgrade at a time
        runtime.app.upgrade_deployment(in_prod, 3, actor="bob", reason="CHG-2")
    assert runtime.app.deployment(deployment_id).state == "deployed"


def test_whole_deployment_power_goes_off_in_reverse_order_and_on_in_start_order(
    runtime: Runtime, vcenter: SimulatedVCenter, slept: list[float]
) -> None:
    deployment_id = deployed(runtime, versions(runtime))
    slept.clear()
    runtime.app.power_deployment(deployment_id, "off", actor="bob", reason="maintenance")
    runtime.catch_up()
    assert not any(vm.powered_on for vm in vms(vcenter, deployment_id).values())
    runtime.app.power_deployment(deployment_id, "on", actor="bob")
    runtime.catch_up()
    assert all(vm.powered_on for vm in vms(vcenter, deployment_id).values())
    changed = [(e.action, e.machine) for e in events(runtime, deployment_id) if hasattr(e, "power_state")]
    assert changed == [("off", "web"), ("off", "app"), ("off", "db"), ("on", "db"), ("on", "app"), ("on", "web")]
    assert slept == [20.0]
    with pytest.raises(InvalidTransitionError, match="already powered on"):
        runtime.app.power_deployment(deployment_id, "on", actor="bob")
    with pytest.raises(ValidationError) as refused:
        runtime.app.power_deployment(deployment_id, "reset", actor="bob")
    assert refused.value.field == "action"


class CrashingVCenter(SimulatedVCenter):
    """Dies (like a killed worker) at the first call of one method."""

    def __init__(self, state_file: Path, method: str) -> None:
        super().__init__(state_file=state_file)
        self.method = method

    def _die(self, method: str) -> None:
        if method == self.method:
            raise SystemExit("worker killed")

    def reconfigure(self, vm_id: str, cpus: int, memory_mib: int, disks_gib: tuple[int, ...]) -> None:
        self._die("reconfigure")
        super().reconfigure(vm_id, cpus, memory_mib, disks_gib)

    def power_on(self, vm_id: str) -> VmInfo:
        self._die("power_on")
        return super().power_on(vm_id)

    def clone(self, spec: CloneSpec) -> VmInfo:
        self._die("clone")
        return super().clone(spec)

    def destroy(self, vm_id: str) -> None:
        self._die("destroy")
        super().destroy(vm_id)


@pytest.mark.parametrize("method", ["reconfigure", "power_on", "clone", "destroy"])
def test_a_worker_killed_mid_upgrade_finishes_on_restart_without_duplicates(
    database_url: str, tmp_path: Path, method: str
) -> None:
    if database_url == "memory://":
        pytest.skip("events in memory do not survive the worker")
    inventory = tmp_path / "vcenter.json"
    first = runtime_for(database_url, vcenter=SimulatedVCenter(state_file=inventory))
    first.process.sleep = lambda seconds: None
    first.app.import_templates(None, True, actor="a")
    configuration_id = versions(first)
    first.app.remove_machine(configuration_id, "web", actor="a")  # v4: cache added, app resized, web gone
    rebuilt = machine("db", template="tpl-rhel-9", start_order={"group": 0})
    first.app.change_machine(configuration_id, "db", rebuilt, actor="a")  # v5: and db on a new template
    deployment_id = deployed(first, configuration_id)
    first.close()
    dying = CrashingVCenter(inventory, method)
    second = runtime_for(database_url, vcenter=dying)
    second.process.sleep = lambda seconds: None
    second.app.upgrade_deployment(deployment_id, 5, actor="bob")
    with pytest.raises(SystemExit):
        second.catch_up()
    second.close()
    survivor = SimulatedVCenter(state_file=inventory)
    third = runtime_for(database_url, vcenter=survivor)
    third.process.sleep = lambda seconds: None
    third.catch_up()
    deployment = third.app.deployment(deployment_id)
    assert (deployment.state, deployment.configuration_version) == ("deployed", 5)
    after = vms(survivor, deployment_id)
    assert sorted(after) == ["app", "cache", "db"]
    assert len(survivor.all_vms()) == 3
    assert all(vm.powered_on for vm in after.values())
    assert after["app"].cpus == 4
    steps = Counter(topics(third, deployment_id))
    assert (steps["MachineReconfigured"], steps["MachineRemoved"], steps["Upgraded"]) == (1, 1, 1)
    assert steps["MachineRebuilding"] == 1
    assert steps["MachineProvisioned"] == 5  # three on deploy, then cache and the rebuilt db
    assert survivor.hardware(after["db"].vm_id)[2] == (20,)  # cloned from tpl-rhel-9
    third.close()


def test_concurrent_upgrade_and_undeploy_one_wins_the_other_is_refused(runtime: Runtime, slept: list[float]) -> None:
    configuration_id = versions(runtime)
    deployment_id = deployed(runtime, configuration_id)
    results: list[str] = []
    barrier = threading.Barrier(3)

    def attempt(command: Callable[[], object]) -> None:
        barrier.wait()
        try:
            command()
            results.append("won")
        except InvalidTransitionError:
            results.append("refused")

    threads = [
        threading.Thread(target=attempt, args=(lambda: runtime.app.upgrade_deployment(deployment_id, 2, actor="a"),)),
        threading.Thread(target=attempt, args=(lambda: runtime.app.upgrade_deployment(deployment_id, 3, actor="b"),)),
        threading.Thread(target=attempt, args=(lambda: runtime.app.undeploy(deployment_id, actor="c"),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["refused", "refused", "won"]
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state in ("deployed", "undeployed")


def test_a_growth_that_hot_add_allows_is_applied_without_a_power_cycle(
    runtime: Runtime, vcenter: SimulatedVCenter, slept: list[float]
) -> None:
    deployment_id = deployed(runtime, versions(runtime))
    vcenter.enable_hot_add(vms(vcenter, deployment_id)["app"].vm_id)
    runtime.app.upgrade_deployment(deployment_id, 3, actor="bob")
    runtime.catch_up()
    [reconfigured] = [e for e in events(runtime, deployment_id) if hasattr(e, "power_cycled")]
    assert reconfigured.power_cycled is False
    app = vms(vcenter, deployment_id)["app"]
    assert (app.cpus, app.memory_mib, app.powered_on) == (4, 4096, True)


def test_a_template_change_rebuilds_only_that_machine_keeping_its_addresses(
    runtime: Runtime, vcenter: SimulatedVCenter, slept: list[float]
) -> None:
    service_id = runtime.app.register_service("pos", "", stages("int"), actor="a").value.id
    pools = [{"cidr": "10.70.0.0/24", "gateway": "10.70.0.1", "dns": ["10.70.0.2"]}]
    runtime.app.update_stage(service_id, "int", {"ip_pools": pools}, actor="a")
    configuration_id = runtime.app.create_configuration(service_id, "pos", "", NETWORKS, V1, actor="a").value.id
    patched = machine("db", template="tpl-rhel-9", disks=[{"size_gib": 1}], start_order={"group": 0})
    runtime.app.change_machine(configuration_id, "db", patched, actor="a")  # v2: the patched template
    deployment_id = deployed(runtime, configuration_id)
    before = vms(vcenter, deployment_id)
    addressing = runtime.app.deployment(deployment_id).machine("db")["addressing"]
    runtime.app.upgrade_deployment(deployment_id, 2, actor="bob", reason="patched template")
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert (deployment.state, deployment.configuration_version) == ("deployed", 2), deployment.failure
    after = vms(vcenter, deployment_id)
    assert after["db"].vm_id != before["db"].vm_id
    assert vcenter.hardware(after["db"].vm_id) == (2, 2048, (20,))  # a new VM from tpl-rhel-9
    assert (after["db"].ip, after["db"].macs[0]) == (addressing["ip"], addressing["macs"][0]["mac"])
    assert (after["app"], after["web"]) == (before["app"], before["web"])
    rebuilding = [e for e in events(runtime, deployment_id) if type(e).__name__ == "MachineRebuilding"]
    assert [e.changed for e in rebuilding] == [["template"]]
