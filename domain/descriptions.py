"""What vCenter says about VMs that exist already (for capture), in domain terms.

The driver port's `describe_vms` answers these; domain/capture.py turns them into a
configuration and an adopted deployment. No vendor types here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from domain.errors import ValidationError, VCenterObjectNotFoundError

# How a disk's space is allocated: thin, thick (lazily zeroed) or eager-zeroed thick.
PROVISIONING = ("thin", "thick", "eager-zeroed-thick")


@dataclass(frozen=True)
class DiskDescription:
    label: str
    capacity_kib: int
    provisioning: str  # one of PROVISIONING
    file: str  # the backing file, e.g. "[LocalDS_0] erp-db/erp-db.vmdk"
    datastore: str
    # Parent backing files, nearest first: a non-empty chain means snapshot delta disks.
    delta_chain: tuple[str, ...] = ()


@dataclass(frozen=True)
class NicDescription:
    label: str
    network: str  # the port group's name
    mac: str | None
    adapter: str  # e1000, e1000e, vmxnet3, pcnet32, ...


@dataclass(frozen=True)
class VmDescription:
    vm_id: str
    name: str
    guest_id: str
    os_family: str  # "linux" | "windows"
    cpus: int
    memory_mib: int
    disks: tuple[DiskDescription, ...]
    nics: tuple[NicDescription, ...]
    annotation: str
    folder: str  # inventory path, e.g. /DC0/vm/erp
    resource_pool: str  # /DC0/host/DC0_C0/Resources/...
    host: str
    datastores: tuple[str, ...]
    is_template: bool
    powered_on: bool
    ip: str | None = None  # from VMware Tools, where known
    hostname: str | None = None  # from VMware Tools, where known
    snapshots: tuple[str, ...] = field(default=())  # snapshot names, depth first
    deployment_id: UUID | None = None  # Stagekeeper's tag, when another deployment manages it
    machine: str | None = None


@dataclass(frozen=True)
class VmSelector:
    """Which VMs to describe: exactly one of these is set."""

    vms: tuple[str, ...] = ()  # VM ids (moids, "vm-42") or exact VM names
    folder: str | None = None  # /DC0/vm/erp: every VM inside it, nested folders included
    resource_pool: str | None = None  # /DC0/host/DC0_C0/Resources/erp: every VM in it, child pools included


def pick(entries: tuple[str, ...], names: dict[str, str]) -> list[str]:
    """The VM ids that `entries` (ids or exact names) name, in the order given, each once.
    `names` maps every VM id of the inventory to its name. Both drivers decide the same way."""
    by_name: dict[str, list[str]] = {}
    for vm_id, name in names.items():
        by_name.setdefault(name, []).append(vm_id)
    picked: list[str] = []
    for i, entry in enumerate(entries):
        if entry in names:
            found = entry
        elif len(by_name.get(entry, [])) == 1:
            found = by_name[entry][0]
        elif entry in by_name:
            ids = ", ".join(sorted(by_name[entry]))
            raise ValidationError(
                f"vms[{i}]: several VMs are named '{entry}' ({ids}): give the VM id", field=f"vms[{i}]"
            )
        else:
            raise VCenterObjectNotFoundError(f"vms[{i}]: no VM with id or name '{entry}' in vCenter", field=f"vms[{i}]")
        if found not in picked:
            picked.append(found)
    return picked
