"""The simulated vCenter's VMs made outside Stagekeeper, and how it describes them (capture)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.descriptions import DiskDescription, NicDescription, VmDescription, VmSelector, pick
from domain.errors import VCenterObjectNotFoundError

if TYPE_CHECKING:
    from adapters.vcenter.simulated import _Vm

DATASTORE = "LocalDS_0"


def existing_vm(vm_id: str, name: str, resource_pool: str, details: dict[str, Any]) -> _Vm:
    from adapters.vcenter.simulated import _Vm

    datacenter = resource_pool.strip("/").split("/")[0]
    defaults: dict[str, Any] = {
        "template": "",
        "cpus": 1,
        "memory_mib": 32,
        "linked": False,
        "deployment_id": "",
        "machine": "",
        "powered_on": True,
        "os_family": "linux",
        "guest_id": "otherGuest",
        "folder": f"/{datacenter}/vm",
        "host": f"{datacenter}_C0_H0",
        "disks": [{"label": "Hard disk 1", "capacity_kib": 1024, "provisioning": "thin", "delta_chain": []}],
        "nics": [],
    }
    vm = _Vm(vm_id=vm_id, name=name, resource_pool=resource_pool, **{**defaults, **details})
    for disk in vm.disks:
        disk.setdefault("file", f"[{DATASTORE}] {name}/{name}.vmdk")
    return vm


def describe(vms: list[_Vm], pools: set[str], selector: VmSelector) -> list[VmDescription]:
    if selector.vms:
        wanted = set(pick(selector.vms, {vm.vm_id: vm.name for vm in vms}))
        chosen = [vm for vm in vms if vm.vm_id in wanted]
    elif selector.folder is not None:
        folders = {vm.folder or _default_folder(vm) for vm in vms} | {f"/{p.split('/')[1]}/vm" for p in pools}
        if not any(_inside(f, selector.folder) for f in folders):
            raise VCenterObjectNotFoundError(f"folder '{selector.folder}' not found in vCenter")
        chosen = [vm for vm in vms if _inside(vm.folder or _default_folder(vm), selector.folder)]
    else:
        assert selector.resource_pool is not None
        if selector.resource_pool not in pools:
            raise VCenterObjectNotFoundError(f"resource pool '{selector.resource_pool}' not found in vCenter")
        chosen = [vm for vm in vms if _inside(vm.resource_pool, selector.resource_pool)]
    return sorted((_description(vm) for vm in chosen), key=lambda d: (d.name, d.vm_id))


def _description(vm: _Vm) -> VmDescription:
    disks = tuple(
        DiskDescription(
            label=d.get("label", f"Hard disk {i + 1}"),
            capacity_kib=int(d["capacity_kib"]),
            provisioning=d.get("provisioning", "thin"),
            file=d["file"],
            datastore=d["file"][1 : d["file"].index("]")],
            delta_chain=tuple(d.get("delta_chain", [])),
        )
        for i, d in enumerate(vm.disks)
    )
    guest = vm.guest_id or ("windows9Server64Guest" if vm.os_family == "windows" else "otherGuest")
    return VmDescription(
        vm_id=vm.vm_id,
        name=vm.name,
        guest_id=guest,
        os_family=vm.os_family or "linux",
        cpus=vm.cpus,
        memory_mib=vm.memory_mib,
        disks=disks,
        nics=tuple(
            NicDescription(
                label=n.get("label", f"Network adapter {i + 1}"),
                network=n["network"],
                mac=n.get("mac"),
                adapter=n.get("adapter", "vmxnet3"),
            )
            for i, n in enumerate(vm.nics)
        ),
        annotation=vm.annotation,
        folder=vm.folder or _default_folder(vm),
        resource_pool=vm.resource_pool,
        host=vm.host,
        datastores=tuple(sorted({d.datastore for d in disks})),
        is_template=vm.is_template,
        powered_on=vm.powered_on,
        ip=vm.ip if vm.powered_on else None,
        hostname=vm.hostname if vm.powered_on else None,
        snapshots=tuple(vm.snapshots),
        deployment_id=UUID(vm.deployment_id) if vm.deployment_id else None,
        machine=vm.machine or None if vm.deployment_id else None,
    )


def _default_folder(vm: _Vm) -> str:
    return f"/{vm.resource_pool.strip('/').split('/')[0]}/vm"


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")
