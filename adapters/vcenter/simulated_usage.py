"""Usage figures of the simulated vCenter (a simulation: no VM runs, so no VM uses anything).

What the simulation reports, and why: a powered-on VM is given a fixed, stated load (a tenth of
its vCPUs at 2,000 MHz each, a quarter of its memory), a powered-off one none; committed storage is
the VM's disks, thick (as vcsim's datastore free space moves with each disk); one datastore,
LocalDS_0 (vcsim's name), of SIMULATED_CAPACITY_BYTES, whose free space is what the VMs leave.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.metrics import DatastoreUsage, UsageSample, VmUsage

DATASTORE = "LocalDS_0"
SIMULATED_CAPACITY_BYTES = 4 * 1024**4
MHZ_PER_VCPU = 2000
GIB = 1024**3


def sample(vms: Iterable[Any], disks_of: Callable[[Any], Iterable[int]]) -> UsageSample:
    """`vms`: the simulation's VM records; `disks_of(vm)`: a VM's disk sizes in GiB."""
    found: list[VmUsage] = []
    committed_total = 0
    for vm in vms:
        committed = sum(disks_of(vm)) * GIB
        committed_total += committed
        if not vm.deployment_id or vm.is_template:
            continue
        found.append(
            VmUsage(
                vm_id=vm.vm_id,
                deployment_id=UUID(vm.deployment_id),
                machine=vm.machine or None,
                powered_on=vm.powered_on,
                cpu_mhz=vm.cpus * MHZ_PER_VCPU // 10 if vm.powered_on else 0,
                memory_mib=vm.memory_mib // 4 if vm.powered_on else 0,
                committed_bytes=committed,
                datastore=DATASTORE,
            )
        )
    free = max(0, SIMULATED_CAPACITY_BYTES - committed_total)
    datastore = DatastoreUsage(DATASTORE, SIMULATED_CAPACITY_BYTES, free)
    return UsageSample(taken_at=datetime.now(UTC), vms=tuple(found), datastores=(datastore,), calls=1)
