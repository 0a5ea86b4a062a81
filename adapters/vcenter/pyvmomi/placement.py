"""Placement over the vSphere API: the inventory placement needs (hosts' free CPU and memory,
datastores' free space, DRS), DRS's recommendation (ClusterComputeResource.PlaceVm), and moving a
VM to another host of its cluster. Objects are read with the property collector, one call per kind.

vcsim: PlaceVm answers a random host and crashes when given fewer hosts or datastores than the
cluster has, so it is always given all of them; a clone ignores the host placement chose, which is
why the process manager relocates after the clone and reads runtime.host back.

Each inventory read also keeps what it learned, so the steps that follow it save round trips:
each cluster's hosts and datastores (DRS is asked once per machine, right after the read), and
hosts' and datastores' references by name and names by reference (settling each clone). A name not
known (or an object gone) is looked up again.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

from pyVmomi import vim

from adapters.vcenter.pyvmomi import inventory
from adapters.vcenter.pyvmomi.session import Session
from domain.errors import VCenterObjectNotFoundError
from domain.ports import ClusterCapacity, DatastoreCapacity, DrsRecommendation, HostCapacity, VmLocation

MIB = 1024 * 1024
HOST_PROPERTIES = [
    "name",
    "summary.hardware.cpuMhz",
    "summary.hardware.numCpuCores",
    "summary.hardware.memorySize",
    "summary.quickStats.overallCpuUsage",
    "summary.quickStats.overallMemoryUsage",
    "runtime.inMaintenanceMode",
    "runtime.connectionState",
]
DATASTORE_PROPERTIES = ["name", "summary.freeSpace", "summary.capacity"]
# How long a cluster's hosts and datastores, as the last inventory read saw them, are given to DRS
# without reading them again (a placement asks DRS once per machine right after that read).
CLUSTER_TTL_SECONDS = 60.0


class Placement:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._lock = threading.Lock()
        # (datacenter, cluster) -> (when read, compute resource, its hosts, its datastores)
        self._clusters: dict[tuple[str, str], tuple[float, Any, list[Any], list[Any]]] = {}
        self._refs: dict[tuple[type, str], Any] = {}  # (kind, name) -> host or datastore
        self._names: dict[str, str] = {}  # moid of a host or datastore -> its name

    @property
    def _content(self) -> Any:
        return self.session.content

    def _computes(self, datacenter: str) -> list[Any]:
        dc = inventory.datacenter(self._content, datacenter)
        if dc is None:
            raise VCenterObjectNotFoundError(f"datacenter '{datacenter}' not found in vCenter")
        return [c for c in inventory.children(dc.hostFolder) if isinstance(c, vim.ComputeResource)]

    def inventory(self, datacenter: str) -> list[ClusterCapacity]:
        return self.session.call(f"read placement inventory of {datacenter}", partial(self._inventory, datacenter))

    def _inventory(self, datacenter: str) -> list[ClusterCapacity]:
        content = self._content
        computes = {c._moId for c in self._computes(datacenter)}
        # One property-collector call for every kind (a cluster is a compute resource with a DRS setting).
        compute = ["name", "host", "datastore"]
        found_all = inventory.retrieve_many(
            content,
            {
                vim.ComputeResource: compute,
                vim.ClusterComputeResource: [*compute, "configurationEx"],
                vim.HostSystem: HOST_PROPERTIES,
                vim.Datastore: DATASTORE_PROPERTIES,
            },
        )
        resources = [(o, p) for o, p in found_all if isinstance(o, vim.ComputeResource)]
        drs = {
            obj._moId: bool(getattr(getattr(props.get("configurationEx"), "drsConfig", None), "enabled", False))
            for obj, props in resources
        }
        host_list = [(o, p) for o, p in found_all if isinstance(o, vim.HostSystem)]
        store_list = [(o, p) for o, p in found_all if isinstance(o, vim.Datastore)]
        hosts = {obj._moId: props for obj, props in host_list}
        stores = {obj._moId: props for obj, props in store_list}
        self._learn(vim.HostSystem, host_list)
        self._learn(vim.Datastore, store_list)
        now = time.monotonic()
        found = []
        for obj, props in resources:
            if obj._moId not in computes:
                continue
            with self._lock:
                entry = (now, obj, list(props.get("host") or []), list(props.get("datastore") or []))
                self._clusters[(datacenter, str(props["name"]))] = entry
            found.append(
                ClusterCapacity(
                    datacenter=datacenter,
                    name=str(props["name"]),
                    drs=drs.get(obj._moId, False),
                    hosts=tuple(_host(hosts[h._moId]) for h in props.get("host") or [] if h._moId in hosts),
                    datastores=tuple(
                        _datastore(stores[d._moId]) for d in props.get("datastore") or [] if d._moId in stores
                    ),
                )
            )
        return sorted(found, key=lambda c: c.name)

    def _learn(self, kind: type, found: list[tuple[Any, dict[str, Any]]]) -> None:
        with self._lock:
            for obj, props in found:
                if "name" in props:
                    self._refs[(kind, str(props["name"]))] = obj
                    self._names[obj._moId] = str(props["name"])

    def _forget(self) -> None:
        """Drop what earlier reads learned (vCenter said an object is gone)."""
        with self._lock:
            self._clusters.clear()
            self._refs.clear()
            self._names.clear()

    def _cluster(self, datacenter: str, cluster: str) -> tuple[Any, list[Any], list[Any]]:
        """The cluster and every host and datastore of it (vcsim's PlaceVm crashes on fewer)."""
        with self._lock:
            entry = self._clusters.get((datacenter, cluster))
        if entry is not None and time.monotonic() - entry[0] < CLUSTER_TTL_SECONDS:
            return entry[1], entry[2], entry[3]
        compute = next((c for c in self._computes(datacenter) if c.name == cluster), None)
        if not isinstance(compute, vim.ClusterComputeResource):
            raise VCenterObjectNotFoundError(f"cluster '{cluster}' not found in datacenter '{datacenter}'")
        return compute, list(compute.host), list(compute.datastore)

    def recommend(self, datacenter: str, cluster: str, cpus: int, memory_mib: int) -> DrsRecommendation | None:
        def ask() -> DrsRecommendation | None:
            compute, hosts, datastores = self._cluster(datacenter, cluster)
            if not isinstance(compute, vim.ClusterComputeResource):
                raise VCenterObjectNotFoundError(f"cluster '{cluster}' not found in datacenter '{datacenter}'")
            spec = vim.cluster.PlacementSpec(
                placementType="create",
                configSpec=vim.vm.ConfigSpec(numCPUs=cpus, memoryMB=memory_mib),
                hosts=hosts,
                datastores=datastores,
            )
            result = compute.PlaceVm(spec)
            for recommendation in result.recommendations or []:
                for action in recommendation.action or []:
                    if isinstance(action, vim.cluster.PlacementAction) and action.targetHost is not None:
                        store = getattr(action.relocateSpec, "datastore", None)
                        host = self._name_of(action.targetHost)
                        return DrsRecommendation(host, self._name_of(store) if store else None)
            return None

        try:
            return self.session.call(f"ask DRS to place a VM in {cluster}", ask)
        except VCenterObjectNotFoundError:
            self._forget()
            raise

    def _name_of(self, obj: Any) -> str:
        """A host's or datastore's name: as the inventory read it, else read now."""
        with self._lock:
            name = self._names.get(obj._moId)
        if name is None:
            name = str(inventory.properties_of(self._content, obj, ["name"]).get("name", ""))
            if name:
                with self._lock:
                    self._names[obj._moId] = name
        return name

    def _named(self, kind: type, name: str, what: str) -> Any:
        with self._lock:
            known = self._refs.get((kind, name))
        if known is not None:
            return known
        found = inventory.retrieve(self._content, kind, ["name"])
        self._learn(kind, found)
        match = [obj for obj, props in found if props.get("name") == name]
        if not match:
            raise VCenterObjectNotFoundError(f"{what} '{name}' not found in vCenter")
        return match[0]

    def relocate(self, vm: Any, host: str, datastore: str | None) -> None:
        def plan() -> Any:
            spec = vim.vm.RelocateSpec(host=self._named(vim.HostSystem, host, "host"))
            if datastore is not None:
                spec.datastore = self._named(vim.Datastore, datastore, "datastore")
            return spec

        spec = self.session.call(f"find host {host}", plan)
        try:
            task = self.session.call("relocate to host", lambda: vm.RelocateVM_Task(spec=spec))
            self.session.wait(task, f"relocation of {vm._moId} to host {host}")
        except VCenterObjectNotFoundError:
            self._forget()  # the host or datastore known by that name may be what vanished
            raise

    def location(self, vm: Any) -> VmLocation:
        def read() -> VmLocation:
            props = inventory.properties_of(self._content, vm, ["runtime.host", "datastore"])
            host = props.get("runtime.host")
            stores = props.get("datastore") or []
            host_name = self._name_of(host) if host else ""
            store_name = self._name_of(stores[0]) if stores else None
            return VmLocation(host_name, store_name or None)

        return self.session.call(f"read where VM {vm._moId} runs", read)

    def datastore(self, name: str) -> Any:
        return self.session.call(f"find datastore {name}", lambda: self._named(vim.Datastore, name, "datastore"))


def _host(props: dict[str, Any]) -> HostCapacity:
    cpu = int(props.get("summary.hardware.cpuMhz") or 0) * int(props.get("summary.hardware.numCpuCores") or 0)
    memory = int(props.get("summary.hardware.memorySize") or 0) // MIB
    connected = props.get("runtime.connectionState") in (None, "connected")
    return HostCapacity(
        name=str(props["name"]),
        free_cpu_mhz=max(cpu - int(props.get("summary.quickStats.overallCpuUsage") or 0), 0),
        free_memory_mib=max(memory - int(props.get("summary.quickStats.overallMemoryUsage") or 0), 0),
        usable=connected and not props.get("runtime.inMaintenanceMode"),
    )


def _datastore(props: dict[str, Any]) -> DatastoreCapacity:
    return DatastoreCapacity(
        name=str(props["name"]),
        free_mib=int(props.get("summary.freeSpace") or 0) // MIB,
        capacity_mib=int(props.get("summary.capacity") or 0) // MIB,
    )
