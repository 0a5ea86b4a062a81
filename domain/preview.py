"""Previews: what a promote, swap or upgrade will change in the stage it lands in, before it runs.

Each answer compares the machines that will run there with what runs there now (machines added,
removed, changed field by field), says what happens to each VM (moved, cloned, reconfigured,
rebuilt, destroyed, powered off) and which addresses change. Pure functions over aggregates
and specs: the application loads them (domain/commands/preview.py).
"""

from __future__ import annotations

from typing import Any

from domain.commands.upgrades import rebuild_fields
from domain.deployment import Deployment
from domain.diff import _fields
from domain.values import PoolPath

MachineSpecs = list[dict[str, Any]]


def machine_changes(now: MachineSpecs, then: MachineSpecs) -> dict[str, Any]:
    """Machines added, removed and changed (field by field, [now, then]) from `now` to `then`."""
    before = {m["name"]: m for m in now}
    after = {m["name"]: m for m in then}
    return {
        "added": [n for n in after if n not in before],
        "removed": [n for n in before if n not in after],
        "changed": {n: _fields(before[n], after[n]) for n in after if n in before and before[n] != after[n]},
    }


def _addresses(machine: dict[str, Any]) -> dict[str, Any]:
    addressing = machine.get("addressing") or {}
    ip = machine.get("ip") or addressing.get("ip")
    macs = [n["mac"] for n in addressing.get("macs", []) if n.get("mac")] or (
        [machine["mac"]] if machine.get("mac") else []
    )
    return {"ip": ip, "macs": macs}


def address_changes(current: Deployment | None, incoming: Deployment) -> list[dict[str, Any]]:
    """Per machine of `incoming`: the address it answers on there now and the one it will have."""
    there = {m["name"]: _addresses(m) for m in (current.machines if current is not None else [])}
    found = []
    for machine in incoming.machines:
        then = _addresses(machine)
        now = there.get(machine["name"], {"ip": None, "macs": []})
        if now != then:
            found.append({"machine": machine["name"], "before": now, "after": then})
    return found


def _specs(deployment: Deployment | None) -> MachineSpecs:
    return [m["spec"] for m in deployment.machines] if deployment is not None else []


def _running(deployment: Deployment | None) -> dict[str, Any] | None:
    if deployment is None:
        return None
    return {"id": str(deployment.id), "configuration_version": deployment.configuration_version,
            "state": deployment.state}  # fmt: skip


def promote_preview(
    deployment: Deployment, target_stage: str, target_pool: str, current: Deployment | None, direction: str
) -> dict[str, Any]:
    """A promote (or demote) of `deployment` into `target_stage`, where `current` (the newest live
    deployment of the same configuration there, if any) runs now."""
    across = PoolPath.parse(target_pool).cluster_path != PoolPath.parse(deployment.resource_pool).cluster_path
    vms = [
        {"machine": m["name"], "vm_id": m["vm_id"], "action": "clone" if across else "move",
         "from_pool": m.get("resource_pool"), "to_pool": target_pool}
        for m in deployment.machines if m.get("vm_id")
    ]  # fmt: skip
    return {
        "action": direction,
        "deployment_id": str(deployment.id),
        "from_stage": deployment.stage,
        "target_stage": target_stage,
        "target_pool": target_pool,
        "running_now": _running(current),
        "machines": machine_changes(_specs(current), _specs(deployment)),
        "vms": vms,
        "addresses": address_changes(current, deployment),
    }


def swap_preview(incoming: Deployment, outgoing: Deployment, keep_previous: bool) -> dict[str, Any]:
    vms = [
        {"machine": m["name"], "vm_id": m["vm_id"], "action": "move", "from_pool": m.get("resource_pool"),
         "to_pool": outgoing.resource_pool}
        for m in incoming.machines if m.get("vm_id")
    ] + [
        {"machine": m["name"], "vm_id": m["vm_id"], "action": "power-off" if keep_previous else "destroy",
         "from_pool": m.get("resource_pool"), "to_pool": m.get("resource_pool") if keep_previous else None}
        for m in outgoing.machines if m.get("vm_id")
    ]  # fmt: skip
    return {
        "action": "swap",
        "deployment_id": str(incoming.id),
        "from_stage": incoming.stage,
        "target_stage": outgoing.stage,
        "target_pool": outgoing.resource_pool,
        "running_now": _running(outgoing),
        "machines": machine_changes(_specs(outgoing), _specs(incoming)),
        "vms": vms,
        "addresses": address_changes(outgoing, incoming),
    }


def upgrade_preview(deployment: Deployment, version: int, target: MachineSpecs) -> dict[str, Any]:
    now = {m["name"]: m for m in deployment.machines}
    vms = []
    for spec in target:
        machine = now.get(spec["name"])
        if machine is None:
            vms.append({"machine": spec["name"], "vm_id": None, "action": "clone"})
        elif rebuild_fields(machine["spec"], spec):
            vms.append({"machine": spec["name"], "vm_id": machine["vm_id"], "action": "rebuild",
                        "because": rebuild_fields(machine["spec"], spec)})  # fmt: skip
        elif machine["spec"] != spec:
            vms.append({"machine": spec["name"], "vm_id": machine["vm_id"], "action": "reconfigure"})
    names = {s["name"] for s in target}
    vms += [{"machine": n, "vm_id": m["vm_id"], "action": "destroy"} for n, m in now.items() if n not in names]
    # Added and rebuilt machines get addresses from the stage's pools when built; removed ones release theirs.
    addresses = [
        {"machine": v["machine"], "before": _addresses(now[v["machine"]]) if v["machine"] in now else None,
         "after": None,
         "note": "released" if v["action"] == "destroy" else "new addresses from the stage's pools when built"}
        for v in vms if v["action"] in ("clone", "rebuild", "destroy")
    ]  # fmt: skip
    return {
        "action": "upgrade",
        "deployment_id": str(deployment.id),
        "from_stage": deployment.stage,
        "target_stage": deployment.stage,
        "target_pool": deployment.resource_pool,
        "from_version": deployment.configuration_version,
        "to_version": version,
        "running_now": _running(deployment),
        "machines": machine_changes(_specs(deployment), target),
        "vms": vms,
        "addresses": addresses,
    }
