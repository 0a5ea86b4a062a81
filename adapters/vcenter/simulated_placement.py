"""Hosts and datastores of the simulated vCenter, for placement (a mixin of SimulatedVCenter).

Like vcsim's model: a compute resource named like a cluster (DC0_C0) holds hosts DC0_C0_H0...,
with DRS enabled; any other compute resource is a standalone host of that name, without DRS.
Every host sees every datastore of its datacenter (LocalDS_0...). Hosts are large (the simulation
deploys thousands of machines in benchmarks); a test that wants them full passes `host_memory_mib`.
A running VM uses its memory and 1,000 MHz per vCPU on its host; every VM uses its disks (the
template's, when it has none of its own) on its datastore. A clone lands, as in vCenter without a
placement, on the host of its cluster with the most free memory and the datastore named in the
clone (else the first); DRS recommends the same host and the emptiest datastore.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Protocol

from domain.errors import VCenterFaultError, VCenterObjectNotFoundError
from domain.ports import (
    ClusterCapacity,
    DatastoreCapacity,
    DrsRecommendation,
    HostCapacity,
    TemplateInfo,
    VmLocation,
)

CLUSTER_NAME = re.compile(r"_C\d+$")
HOST_CPU_MHZ = 32 * 2_400
HOST_MEMORY_MIB = 4 * 1024 * 1024
DATASTORE_MIB = 100 * 1024 * 1024
MHZ_PER_VCPU = 1_000


class _VmLike(Protocol):
    vm_id: str
    resource_pool: str
    template: str
    cpus: int
    memory_mib: int
    powered_on: bool
    host: str
    datastore: str
    disks_gib: list[int] | None
    is_template: bool


class SimulatedPlacement:
    _lock: threading.RLock
    _clusters: dict[str, tuple[str, ...]]
    _vms: dict[str, Any]
    _templates: dict[str, TemplateInfo]
    hosts_per_cluster: int = 3
    datastores: tuple[str, ...] = ("LocalDS_0",)
    host_memory_mib: int = HOST_MEMORY_MIB
    maintenance: frozenset[str] = frozenset()  # hosts in maintenance mode (tests set it)

    def _save(self) -> None: ...

    def _vm(self, vm_id: str) -> Any: ...

    def _maybe_fail(self, method: str) -> None: ...

    # -- the model ---------------------------------------------------------------------------------
    def _hosts_of(self, compute: str) -> tuple[str, ...]:
        if CLUSTER_NAME.search(compute):
            return tuple(f"{compute}_H{i}" for i in range(self.hosts_per_cluster))
        return (compute,)

    def _compute_of_pool(self, pool: str) -> tuple[str, str]:
        parts = pool.strip("/").split("/")
        return parts[0], parts[2] if len(parts) > 2 else ""

    def _disk_mib(self, vm: _VmLike) -> int:
        disks = vm.disks_gib if vm.disks_gib is not None else self._template_disks(vm.template)
        return sum(disks) * 1024

    def _template_disks(self, name: str) -> list[int]:
        template = self._templates.get(name)
        return list(template.disks_gib) if template is not None else []

    def _cluster_capacity(self, datacenter: str, compute: str) -> ClusterCapacity:
        vms = [v for v in self._vms.values() if not v.is_template]
        running = [v for v in vms if v.powered_on]
        hosts = tuple(
            HostCapacity(
                name=host,
                free_cpu_mhz=HOST_CPU_MHZ - sum(v.cpus * MHZ_PER_VCPU for v in running if v.host == host),
                free_memory_mib=self.host_memory_mib - sum(v.memory_mib for v in running if v.host == host),
                usable=host not in self.maintenance,
            )
            for host in self._hosts_of(compute)
        )
        stores = tuple(
            DatastoreCapacity(
                name=ds,
                free_mib=DATASTORE_MIB - sum(self._disk_mib(v) for v in vms if v.datastore == ds),
                capacity_mib=DATASTORE_MIB,
            )
            for ds in self.datastores
        )
        return ClusterCapacity(datacenter, compute, bool(CLUSTER_NAME.search(compute)), hosts, stores)

    def _initial_host(self, vm: _VmLike, datastore: str | None) -> None:
        """Where a new clone lands (vCenter's own choice, before placement relocates it)."""
        datacenter, compute = self._compute_of_pool(vm.resource_pool)
        capacity = self._cluster_capacity(datacenter, compute)
        usable = [h for h in capacity.hosts if h.usable] or list(capacity.hosts)
        vm.host = sorted(usable, key=lambda h: (-h.free_memory_mib, h.name))[0].name
        vm.datastore = datastore if datastore in self.datastores else self.datastores[0]

    # -- port ----------------------------------------------------------------------------------------
    def placement_inventory(self, datacenter: str) -> list[ClusterCapacity]:
        with self._lock:
            self._maybe_fail("placement_inventory")
            if datacenter not in self._clusters:
                raise VCenterObjectNotFoundError(f"datacenter '{datacenter}' not found in vCenter")
            return [self._cluster_capacity(datacenter, c) for c in sorted(self._clusters[datacenter])]

    def recommend_placement(
        self, datacenter: str, cluster: str, cpus: int, memory_mib: int
    ) -> DrsRecommendation | None:
        with self._lock:
            self._maybe_fail("recommend_placement")
            capacity = self._cluster_capacity(datacenter, cluster)
            if not capacity.drs:
                raise VCenterFaultError(f"vCenter fault during PlaceVm: cluster {cluster} has no DRS")
            hosts = [h for h in capacity.hosts if h.usable and h.free_memory_mib >= memory_mib]
            if not hosts:
                return None
            host = sorted(hosts, key=lambda h: (-h.free_memory_mib, h.name))[0]
            store = sorted(capacity.datastores, key=lambda d: (-d.free_mib, d.name))[0]
            return DrsRecommendation(host.name, store.name)

    def relocate_to_host(self, vm_id: str, host: str, datastore: str | None) -> None:
        with self._lock:
            vm = self._vm(vm_id)
            self._maybe_fail("relocate_to_host")
            _, compute = self._compute_of_pool(vm.resource_pool)
            if host not in self._hosts_of(compute):
                raise VCenterFaultError(
                    f"vCenter fault during relocate: host {host} is not in {compute}, the cluster of VM {vm_id}"
                )
            if host in self.maintenance:
                raise VCenterFaultError(f"vCenter fault during relocate: host {host} is in maintenance mode")
            if datastore is not None and datastore not in self.datastores:
                raise VCenterObjectNotFoundError(f"datastore '{datastore}' not found in vCenter")
            vm.host = host
            vm.datastore = datastore or vm.datastore
            self._save()

    def vm_location(self, vm_id: str) -> VmLocation:
        with self._lock:
            vm = self._vm(vm_id)
            return VmLocation(vm.host, vm.datastore or None)
