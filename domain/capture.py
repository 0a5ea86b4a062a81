"""Capture: what existing VMs become in Stagekeeper, decided without I/O.

`plan_capture` turns vCenter's descriptions of VMs (domain/descriptions.py) into a configuration
definition (machines named after the VMs, networks after their port groups), the machines an
adopted deployment holds (VM ids, power, addresses) and the refusals that stop a capture (a
template, a VM another deployment tags, snapshots or delta disks a copy could not reproduce, an
address two captured VMs share). Claims against the event store are checked by the command
(domain/commands/capture.py), which adds its own refusals.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from domain.configuration import check_definition
from domain.descriptions import VmDescription
from domain.errors import ConflictError, ValidationError
from domain.text import check_text
from domain.values import (
    MAX_CPUS,
    MAX_DISK_GIB,
    MAX_MEMORY_MIB,
    MAX_NAME,
    MAX_TEMPLATE_NAME,
    WINDOWS_HOSTNAME_MAX,
    Machine,
    Network,
    check_display_name,
)

MAX_CAPTURE_VMS = 100  # VMs one capture may adopt (a folder or pool holding more is refused)
MAX_ANNOTATION = 65535
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_NOT_NETWORK = re.compile(r"[^\w .-]+")


@dataclass
class CapturePlan:
    networks: list[dict[str, Any]] = field(default_factory=list)
    machines: list[dict[str, Any]] = field(default_factory=list)  # configuration machines
    adopted: list[dict[str, Any]] = field(default_factory=list)  # what the deployment records per machine
    refusals: list[dict[str, str]] = field(default_factory=list)  # {"vm", "vm_id", "reason"}

    def refuse(self, vm: VmDescription, reason: str) -> None:
        self.refusals.append({"vm": vm.name, "vm_id": vm.vm_id, "reason": reason})


def plan_capture(descriptions: list[VmDescription], selected_by: str = "vms") -> CapturePlan:
    """The configuration and adopted machines these VMs make, and why any of them cannot be captured.
    `selected_by`: the request's field that chose them (vms, folder or resource_pool), named by refusals."""
    if not descriptions:
        raise ValidationError(f"the {selected_by} selection holds no VM", field=selected_by)
    if len(descriptions) > MAX_CAPTURE_VMS:
        raise ValidationError(
            f"the {selected_by} selection holds {len(descriptions)} VMs; one capture adopts at most {MAX_CAPTURE_VMS}",
            field=selected_by,
        )
    plan = CapturePlan()
    network_names: dict[str, str] = {}  # port group -> configuration network
    machine_names: set[str] = set()
    seen_macs: dict[tuple[str, str], str] = {}
    seen_ips: dict[str, str] = {}
    for vm in descriptions:
        if not _acceptable(plan, vm):
            continue
        name = _unique(_label(vm.name), machine_names)
        nics = []
        for nic in vm.nics:
            network = network_names.get(nic.network) or _unique(_network_name(nic.network), set(network_names.values()))
            network_names[nic.network] = network
            nics.append({**asdict(nic), "port_group": nic.network, "network": network})
            if nic.mac:
                other = seen_macs.setdefault((network, nic.mac.lower()), vm.name)
                if other != vm.name:
                    plan.refuse(
                        vm, f"its MAC {nic.mac} on network '{network}' is also the MAC of VM {other} in this capture"
                    )
        if vm.ip:
            other = seen_ips.setdefault(vm.ip, vm.name)
            if other != vm.name:
                plan.refuse(vm, f"its IP {vm.ip} is also the IP of VM {other} in this capture")
        machine = _machine(vm, name, nics)
        plan.machines.append(machine)
        plan.adopted.append(
            {
                "name": name,
                "vm_id": vm.vm_id,
                "vm_name": vm.name,
                "resource_pool": vm.resource_pool,
                "power": "poweredOn" if vm.powered_on else "poweredOff",
                "ip": vm.ip,
                "mac": next((n["mac"] for n in nics if n["mac"]), None),
                "addressing": {
                    "ip": vm.ip, "cidr": None, "prefix_length": None, "gateway": None, "dns": [],
                    "macs": [{"network": n["network"], "mac": n["mac"]} for n in nics if n["mac"]],
                },
            }
        )  # fmt: skip
    plan.networks = [{"name": n, "description": f"port group {pg}"} for pg, n in sorted(network_names.items())]
    if not plan.refusals:
        check_definition([Network.parse(n) for n in plan.networks], [Machine.from_dict(m) for m in plan.machines])
    return plan


def _acceptable(plan: CapturePlan, vm: VmDescription) -> bool:
    before = len(plan.refusals)
    if vm.is_template:
        plan.refuse(vm, "it is a template: templates are imported into the catalogue, not captured")
    if vm.deployment_id is not None:
        plan.refuse(vm, f"Stagekeeper deployment {vm.deployment_id} manages it (machine '{vm.machine}')")
    if vm.snapshots:
        plan.refuse(
            vm,
            f"it has snapshots ({', '.join(vm.snapshots[:5])}{', ...' if len(vm.snapshots) > 5 else ''}) whose delta "
            "disks a copy could not reproduce: delete or consolidate them first",
        )
    for disk in vm.disks:
        if disk.delta_chain:
            plan.refuse(
                vm,
                f"its disk '{disk.label}' ({disk.file}) runs on a delta chain of {len(disk.delta_chain)} parent "
                f"disk(s) ({disk.delta_chain[0]}...) that a copy could not reproduce: consolidate it first",
            )
        if math.ceil(disk.capacity_kib / 1048576) > MAX_DISK_GIB:
            plan.refuse(vm, f"its disk '{disk.label}' is larger than {MAX_DISK_GIB} GiB")
    if not 1 <= vm.cpus <= MAX_CPUS:
        plan.refuse(vm, f"it has {vm.cpus} vCPUs (Stagekeeper records 1 to {MAX_CPUS})")
    if not 4 <= vm.memory_mib <= MAX_MEMORY_MIB:
        plan.refuse(vm, f"it has {vm.memory_mib} MiB of memory (Stagekeeper records 4 to {MAX_MEMORY_MIB})")
    texts = {"name": (vm.name, MAX_TEMPLATE_NAME, False), "annotation": (vm.annotation, MAX_ANNOTATION, True)}
    for what, (text, limit, multiline) in texts.items():
        try:
            check_text(text, what, max_length=limit, multiline=multiline)
        except ValidationError as error:
            plan.refuse(vm, f"its {error.message}")
    return len(plan.refusals) == before


def _machine(vm: VmDescription, name: str, nics: list[dict[str, Any]]) -> dict[str, Any]:
    hostname = _label((vm.hostname or "").split(".")[0]) if vm.hostname else name
    if vm.os_family == "windows":
        hostname = hostname[:WINDOWS_HOSTNAME_MAX].rstrip("-") or "captured"
    return {
        "name": name,
        # A captured machine comes from its VM, not from a catalogue template: a copy clones the VM.
        "template": vm.name,
        "cpus": vm.cpus,
        "memory_mib": vm.memory_mib + (-vm.memory_mib % 4),
        "clone_mode": "full",
        "disks": [{"size_gib": max(1, math.ceil(d.capacity_kib / 1048576))} for d in vm.disks],
        "nics": [{"network": n["network"]} for n in nics],
        "customization": {"os": vm.os_family, "hostname": hostname, "ip_mode": "dhcp"},
        "captured": {
            "vm_id": vm.vm_id,
            "vm_name": vm.name,
            "guest_id": vm.guest_id,
            "annotation": vm.annotation,
            "folder": vm.folder,
            "resource_pool": vm.resource_pool,
            "host": vm.host,
            "datastores": list(vm.datastores),
            "ip": vm.ip,
            "hostname": vm.hostname,
            "disks": [{**asdict(d), "delta_chain": list(d.delta_chain)} for d in vm.disks],
            "nics": nics,
        },
    }


def _label(text: str) -> str:
    """A DNS label made from a VM name: DC0_C0_RP0_VM0 -> dc0-c0-rp0-vm0."""
    label = _NOT_LABEL.sub("-", text.lower()).strip("-")[:MAX_NAME].rstrip("-")
    return label or "vm"


def _network_name(port_group: str) -> str:
    try:
        return check_display_name(port_group, "network")
    except ValidationError:
        cleaned = _NOT_NETWORK.sub("-", port_group).strip(" .-_")[:MAX_NAME].rstrip(" .-_")
        return cleaned or "unnamed network"


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate.casefold() in {t.casefold() for t in taken}:
        n += 1
        suffix = f"-{n}"
        candidate = name[: MAX_NAME - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


def vcenter_network(machines: list[dict[str, Any]], network: str) -> str:
    """The vCenter network a configuration network stands for. A captured configuration names its
    networks after the port groups (cleaned up when a port group's name is no display name), so
    its machines lead back to the port group itself; any other network is its own name."""
    for machine in machines:
        for nic in (machine.get("spec", machine).get("captured") or {}).get("nics", []):
            if nic.get("network") == network and nic.get("port_group"):
                return str(nic["port_group"])
    return network


def check_deployable_from_templates(configuration: str, machines: list[dict[str, Any]]) -> None:
    """A captured machine's template is its source VM's name, not a catalogue template: deploying
    it anew could only fail at vCenter. Refused up front, naming the machine; copies are the way."""
    for machine in machines:
        captured = machine.get("captured") or {}
        if captured and machine.get("template") == captured.get("vm_name"):
            raise ConflictError(
                f"machine '{machine['name']}' of configuration '{configuration}' was captured from VM "
                f"{captured.get('vm_name')} ({captured.get('vm_id')}) and has no template to deploy from: "
                "copy the captured deployment instead (POST /api/v1/deployments/{id}/copy), or give the "
                "machine a catalogue template first",
                field="configuration",
            )
