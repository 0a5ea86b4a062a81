"""Upgrade in place: reconcile a deployment's VMs with another version of its configuration.

Only the differences are touched, in this order, each step an event: machines that go are
stopped (reverse start order) and destroyed, then their addresses released (MachineRemoved);
machines whose template, clone mode or customisation change are destroyed and built anew
(MachineRebuilding, their addresses released and claimed again, the same ones when still free);
machines that stay and change get their NICs (MachineNicsChanged, MAC claims in the same write),
CPU, memory and disks (MachineReconfigured; a VM running when CPU or memory change is powered
off for it and started again); machines that come are cloned, customised with claimed addresses
and started in start order (AddressesAssigned, MachineProvisioned); then Upgraded.

Every step reads what is already done before acting (the recorded spec, the recorded power, the
VMs tagged for the deployment), so a worker killed at any point finishes on restart without
duplicating a VM or a step. A vCenter fault ends the upgrade (UpgradeFailed, with vCenter's
message): steps done stay done and recorded, VMs of machines not yet added are destroyed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from domain.commands.fencing import GATEWAY_MACHINE, wanted_networks
from domain.commands.upgrades import rebuild_fields
from domain.deployment import POWERED_ON, Deployment
from domain.errors import AddressExhaustedError, VCenterFaultError
from domain.ports import NicSetting
from domain.processes.fencing import NAT_KEY, machine_nics, nat_document
from domain.processes.power import provision_in_order
from domain.startorder import stop_groups

if TYPE_CHECKING:
    from domain.processes.deployments import DeploymentProcess

ACTOR = "stagekeeper"
FAILURES = (VCenterFaultError, AddressExhaustedError)


@dataclass(frozen=True)
class UpgradePlan:
    """What is left to do, from the deployment as recorded (pure: unit-tested)."""

    remove: tuple[str, ...]
    rebuild: tuple[tuple[str, tuple[str, ...]], ...]  # (machine, the fields that need a new VM)
    change: tuple[str, ...]
    add: tuple[str, ...]

    @property
    def done(self) -> bool:
        return not (self.remove or self.rebuild or self.change or self.add)


def plan_upgrade(deployment: Deployment) -> UpgradePlan:
    remove = [m for m in deployment.machines if deployment.upgrade_target(m["name"]) is None]
    ordered = [name for group in stop_groups([m["spec"] for m in remove]) for name in group.machines]
    rebuild: list[tuple[str, tuple[str, ...]]] = []
    change: list[str] = []
    for m in deployment.machines:
        target = deployment.upgrade_target(m["name"])
        if m["state"] != "provisioned" or target is None or m["spec"] == target:
            continue
        fields = rebuild_fields(m["spec"], target)
        if fields:
            rebuild.append((m["name"], tuple(fields)))
        else:
            change.append(m["name"])
    add = [m["name"] for m in deployment.machines if m["state"] != "provisioned" and m["name"] not in ordered]
    rebuilt = [name for name, _ in rebuild]
    return UpgradePlan(remove=tuple(ordered), rebuild=tuple(rebuild), change=tuple(change), add=(*add, *rebuilt))


def run_upgrade(process: DeploymentProcess, deployment: Deployment) -> None:
    """Carry an upgrading deployment to its target version (or record why vCenter refused)."""
    app = process.app
    try:
        if deployment.fence is not None:
            fenced_networks_added(process, deployment)
            deployment = app.deployment(deployment.id)
        plan = plan_upgrade(deployment)
        for name in plan.remove:
            _destroy(process, deployment, name)
            app.record_upgrade_removal(deployment.id, name, ACTOR)
        for name, fields in plan.rebuild:
            _destroy(process, deployment, name)
            app.record_upgrade_rebuild(deployment.id, name, list(fields), ACTOR)
        for name in plan.change:
            _change(process, app.deployment(deployment.id), name)
        if plan.add:
            app.assign_addresses(deployment.id, ACTOR)
            if deployment.fence is not None:  # before the clones: the gateway's NAT input lists them
                app.record_upgrade_nat(deployment.id, ACTOR)
            current = app.deployment(deployment.id)
            process.vcenter.ensure_pool(current.resource_pool)
            provision_in_order(process, current, [current.machine(n) for n in plan.add])
        if deployment.fence is not None:
            fenced_networks_dropped(process, app.deployment(deployment.id))
    except FAILURES as fault:
        _fail(process, deployment, fault.message)
        return
    app.record_step(deployment.id, lambda d: d.complete_upgrade(ACTOR))


def _target_networks(deployment: Deployment) -> list[str]:
    assert deployment.upgrade is not None
    return wanted_networks(deployment.upgrade["networks"], deployment.upgrade["machines"])


def fenced_networks_added(process: DeploymentProcess, deployment: Deployment) -> None:
    """Each network the new version brings gets its own port group and VLAN before any machine
    is rewired or added (FenceNetworkAdded with the VLAN claim, then FenceNetworkChanged)."""
    assert deployment.fence is not None
    known = {n["network"] for n in deployment.fence["networks"]}
    for network in _target_networks(deployment):
        if network not in known:
            process.app.record_fence_network_added(deployment.id, network, ACTOR)
    current = process.app.deployment(deployment.id)
    assert current.fence is not None
    for entry in current.fence["networks"]:
        if not entry["created"]:
            process.vcenter.ensure_portgroup(current.fence["dvswitch"], entry["portgroup"], entry["vlan"])
            step = partial(Deployment.record_fence_network, network=entry["network"], created=True, actor=ACTOR)
            process.app.record_step(deployment.id, step)


def fenced_networks_dropped(process: DeploymentProcess, deployment: Deployment) -> None:
    """After the machines: the gateway is rewired to the new version's networks (its NICs and NAT
    input), then the port groups of dropped networks are removed and their VLANs released."""
    fence = deployment.fence
    assert fence is not None
    wanted = _target_networks(deployment)
    kept = [n for n in fence["networks"] if n["network"] in wanted]
    gateway = next((vm for vm in process.vcenter.find_vms(deployment.id) if vm.machine == GATEWAY_MACHINE), None)
    if gateway is not None:
        inside = [NicSetting(network=n["portgroup"], exact=True) for n in kept]
        outside = NicSetting(network=fence["external_network"], exact=True)
        process.vcenter.set_nics(gateway.vm_id, [*inside, outside])
        document = nat_document(deployment, kept)
        process.vcenter.set_extra_config(gateway.vm_id, {NAT_KEY: document})
    for entry in fence["networks"]:
        if entry["network"] in wanted:
            continue
        process.vcenter.remove_portgroup(fence["dvswitch"], entry["portgroup"])
        if entry["created"]:
            step = partial(Deployment.record_fence_network, network=entry["network"], created=False, actor=ACTOR)
            process.app.record_step(deployment.id, step)
        process.app.record_fence_network_removed(deployment.id, entry["network"], ACTOR)


def _destroy(process: DeploymentProcess, deployment: Deployment, name: str) -> None:
    for vm in process.vcenter.find_vms(deployment.id):
        if vm.machine == name:
            if vm.powered_on:
                process.vcenter.power_off(vm.vm_id)
            process.vcenter.destroy(vm.vm_id)


def _change(process: DeploymentProcess, deployment: Deployment, name: str) -> None:
    machine = deployment.machine(name)
    target = deployment.upgrade_target(name)
    assert target is not None
    spec, vm_id = machine["spec"], machine["vm_id"]
    if target["nics"] != spec["nics"]:
        macs = (machine.get("addressing") or {}).get("macs", [])
        if [n["network"] for n in macs] != [n["network"] for n in target["nics"]]:
            macs = process.app.record_upgrade_nics(deployment.id, name, ACTOR)
        process.vcenter.set_nics(vm_id, machine_nics(process.app.deployment(deployment.id), macs))
    resize = (target["cpus"], target["memory_mib"]) != (spec["cpus"], spec["memory_mib"])
    disks = tuple(d["size_gib"] for d in target["disks"]) if target["disks"] != spec["disks"] else ()
    # The recorded power, not vCenter's: after a crash between power-off and power-on, it still
    # says the machine was running and is to run again. A growth that hot-add allows needs no cycle.
    cycle = (
        resize
        and machine.get("power") == POWERED_ON
        and (
            process.vcenter.power_state(vm_id) != POWERED_ON
            or process.vcenter.needs_power_off(vm_id, target["cpus"], target["memory_mib"])
        )
    )
    if resize or disks:
        if cycle:
            process.vcenter.power_off(vm_id)
        try:
            process.vcenter.reconfigure(vm_id, target["cpus"], target["memory_mib"], disks)
        finally:
            if cycle:  # refused or not, the machine runs again as it did
                process.vcenter.power_on(vm_id)
    process.app.record_step(
        deployment.id, lambda d: d.record_machine_reconfigured(name, power_cycled=cycle, actor=ACTOR)
    )


def _fail(process: DeploymentProcess, deployment: Deployment, reason: str) -> None:
    """Destroy the VMs of machines that were being added, then record the failure."""
    current = process.app.deployment(deployment.id)
    unbuilt = {m["name"] for m in current.unbuilt_machines()}
    cleanup = ""
    try:
        for name in sorted(unbuilt):
            _destroy(process, current, name)
    except VCenterFaultError as fault:
        cleanup = f" (cleanup also failed: {fault.message})"
    process.app.record_upgrade_failed(deployment.id, reason + cleanup, ACTOR)
