"""What the drift check reads of vCenter, in domain terms (no vendor types)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class VmObservation:
    """One VM tagged by Stagekeeper, as vCenter has it now."""

    vm_id: str
    name: str
    deployment_id: UUID | None
    machine: str | None
    power: str  # poweredOn | poweredOff | suspended
    cpus: int
    memory_mib: int
    disks_gib: tuple[int, ...]
    networks: tuple[str, ...]  # each NIC's network (port group name), in device order
    macs: tuple[str, ...]
    resource_pool: str
    host: str = ""
