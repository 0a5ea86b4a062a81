"""What vCenter says resources are used for: one sample of the VMs Stagekeeper manages and of the
datastores (the driver port's `sample_usage`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True)
class VmUsage:
    """One managed VM (tagged by a deployment): CPU use (MHz, `summary.quickStats.overallCpuUsage`),
    guest memory in use (MiB, `guestMemoryUsage`), storage committed (bytes, `summary.storage.committed`),
    and the datastore holding its files."""

    vm_id: str
    deployment_id: UUID
    machine: str | None
    powered_on: bool
    cpu_mhz: int
    memory_mib: int
    committed_bytes: int
    datastore: str | None


@dataclass(frozen=True)
class DatastoreUsage:
    name: str
    capacity_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class UsageSample:
    """One collector reading: `vms` only those Stagekeeper tagged, `datastores` all of them."""

    taken_at: datetime
    vms: tuple[VmUsage, ...]
    datastores: tuple[DatastoreUsage, ...]
    calls: int  # vCenter round trips the reading took (property-collector pages included)
