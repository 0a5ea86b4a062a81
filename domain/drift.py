"""Drift: how a deployment's VMs in vCenter differ from what its history says.

`observe` (the driver port's one property-collector read, `VCenterDriver.managed_vms`) gives every
VM tagged by Stagekeeper; `differences` compares one deployment with it, field by field; `changes`
turns the comparison and the drift already recorded into the events to record (a difference is
recorded once, again only when the actual value changes, and resolved when it goes away);
`orphans` lists tagged VMs the history does not know. Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.capture import vcenter_network
from domain.deployment import DEPLOYED, UNDEPLOYED, Deployment
from domain.observations import VmObservation

# The fields compared, in the order they are shown.
FIELDS = ("vm", "power", "cpus", "memory_mib", "disks", "nics", "macs", "resource_pool", "host")
# Fields whose reality may be adopted, and those a revert can put back (the rest: see README).
ADOPTABLE = ("power", "cpus", "memory_mib", "disks", "resource_pool", "host")
REVERTIBLE = ("power", "cpus", "memory_mib", "disks", "nics", "macs", "resource_pool")
MAX_ORPHANS = 1000


@dataclass(frozen=True)
class Difference:
    machine: str
    field: str
    expected: Any
    actual: Any


def _expected_nics(deployment: Deployment, machine: dict[str, Any]) -> tuple[list[str], list[str]] | None:
    macs = (machine.get("addressing") or {}).get("macs") or []
    if not macs:
        return None
    if deployment.fence is not None:
        groups = {n["network"]: n["portgroup"] for n in deployment.fence["networks"]}
        networks = [groups.get(n["network"], n["network"]) for n in macs]
    else:
        networks = [vcenter_network(deployment.machines, n["network"]) for n in macs]
    return networks, [str(n["mac"]).lower() for n in macs if n.get("mac")]


def expected(deployment: Deployment, machine: dict[str, Any]) -> dict[str, Any]:
    """What the history says machine `machine` of `deployment` is in vCenter, per field."""
    spec = machine["spec"]
    wanted: dict[str, Any] = {
        "vm": machine["vm_id"],
        "cpus": spec.get("cpus"),
        "memory_mib": spec.get("memory_mib"),
        "resource_pool": machine.get("resource_pool"),
    }
    if not machine.get("power_pending"):  # a power action on its way: not drift
        wanted["power"] = machine.get("power")
    disks = [d["size_gib"] for d in spec.get("disks") or []]
    if disks:  # no sizes in the configuration: the template's disks, whatever they are
        wanted["disks"] = disks
    nics = _expected_nics(deployment, machine)
    if nics is not None:
        # Port groups are exact only in a fence; elsewhere a network vCenter lacks falls back to the
        # driver's default network when the NIC is set, so only the number of NICs is known.
        wanted["nics"] = nics[0] if deployment.fence is not None else len(nics[0])
        if len(nics[1]) == len(nics[0]):
            wanted["macs"] = nics[1]
    if machine.get("host"):
        wanted["host"] = machine["host"]
    return {k: v for k, v in wanted.items() if v is not None}


def _actual(vm: VmObservation, field_name: str, wanted: Any) -> Any:
    if field_name == "disks":
        return list(vm.disks_gib[: len(wanted)])
    if field_name == "nics":
        return list(vm.networks) if isinstance(wanted, list) else len(vm.networks)
    if field_name == "macs":
        return [m.lower() for m in vm.macs]
    return {"vm": vm.vm_id, "power": vm.power, "cpus": vm.cpus, "memory_mib": vm.memory_mib,
            "resource_pool": vm.resource_pool, "host": vm.host}[field_name]  # fmt: skip


def checkable(deployment: Deployment) -> bool:
    """Only a deployment at rest is compared: while the process manager works, vCenter is moving."""
    return deployment.state == DEPLOYED and getattr(deployment, "snapshot_work", None) is None


def differences(deployment: Deployment, observed: Iterable[VmObservation]) -> list[Difference]:
    """Every field of every built machine where vCenter differs from the history."""
    by_id = {vm.vm_id: vm for vm in observed}
    found: list[Difference] = []
    for machine in deployment.machines:
        if machine["state"] != "provisioned" or not machine.get("vm_id"):
            continue
        wanted = expected(deployment, machine)
        vm = by_id.get(machine["vm_id"])
        if vm is None:
            found.append(Difference(machine["name"], "vm", machine["vm_id"], None))
            continue
        for name in FIELDS[1:]:
            if name in wanted and _actual(vm, name, wanted[name]) != wanted[name]:
                found.append(Difference(machine["name"], name, wanted[name], _actual(vm, name, wanted[name])))
    return found


def changes(
    recorded: dict[str, dict[str, Any]] | None, now: list[Difference]
) -> tuple[list[Difference], list[dict[str, Any]]]:
    """(differences to record as DriftDetected, recorded entries to record as DriftResolved)."""
    current = {f"{d.machine}.{d.field}": d for d in now}
    before = recorded or {}
    new = [d for k, d in current.items() if k not in before or before[k]["actual"] != d.actual]
    gone = [before[k] for k in sorted(before) if k not in current]
    return new, gone


def orphans(observed: Iterable[VmObservation], deployments: dict[UUID, Deployment | None]) -> list[dict[str, Any]]:
    """VMs tagged by Stagekeeper that the history does not hold: no such deployment, an undeployed
    one, a machine it does not have, or not the VM it records (a gateway counts as its fence's).
    `deployments` maps each tagged deployment id to its aggregate (None when unknown). Deployments
    still being built or changed are skipped: their VMs may exist before their events do."""
    found: list[dict[str, Any]] = []
    for vm in observed:
        if vm.deployment_id is None:
            continue
        deployment = deployments.get(vm.deployment_id)
        why = _orphan_reason(vm, deployment)
        if why is not None:
            found.append({"vm_id": vm.vm_id, "name": vm.name, "deployment_id": str(vm.deployment_id),
                          "machine": vm.machine, "resource_pool": vm.resource_pool, "power": vm.power,
                          "reason": why})  # fmt: skip
        if len(found) >= MAX_ORPHANS:
            break
    return sorted(found, key=lambda o: (o["name"], o["vm_id"]))


def _orphan_reason(vm: VmObservation, deployment: Deployment | None) -> str | None:
    if deployment is None:
        return "no such deployment in the history"
    if deployment.state == UNDEPLOYED:
        return "its deployment is undeployed"
    if deployment.state != DEPLOYED:
        return None
    fence = deployment.fence or {}
    gateway = fence.get("gateway") or {}
    if gateway.get("vm_id") == vm.vm_id:
        return None
    known = {m["name"]: m for m in deployment.machines}
    if vm.machine not in known:
        return f"its deployment has no machine '{vm.machine}'"
    if known[vm.machine].get("vm_id") != vm.vm_id:
        return f"machine '{vm.machine}' of its deployment is VM {known[vm.machine].get('vm_id')}"
    return None
