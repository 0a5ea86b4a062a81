"""The simulated vCenter's answer to the drift check: every tagged VM as it is now."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from uuid import UUID

from domain.observations import VmObservation

if TYPE_CHECKING:
    from adapters.vcenter.simulated import _Vm

KIB_IN_GIB = 1024 * 1024


def observe(vms: Iterable[_Vm], template_disks: Callable[[str], tuple[int, ...]]) -> list[VmObservation]:
    found = []
    for vm in vms:
        if not vm.deployment_id or vm.is_template:
            continue
        if vm.disks_gib is not None:
            disks = tuple(vm.disks_gib)
        elif vm.disks:  # a VM made outside Stagekeeper (captured): its own disks
            disks = tuple(-(-int(d["capacity_kib"]) // KIB_IN_GIB) for d in vm.disks)
        else:
            disks = template_disks(vm.template)
        found.append(
            VmObservation(
                vm_id=vm.vm_id,
                name=vm.name,
                deployment_id=UUID(vm.deployment_id),
                machine=vm.machine or None,
                power="poweredOn" if vm.powered_on else "poweredOff",
                cpus=vm.cpus,
                memory_mib=vm.memory_mib,
                disks_gib=disks,
                networks=tuple(str(n["network"]) for n in vm.nics),
                macs=tuple(str(n["mac"]) for n in vm.nics if n.get("mac")),
                resource_pool=vm.resource_pool,
                host=vm.host,
            )
        )
    return sorted(found, key=lambda o: (o.name, o.vm_id))
