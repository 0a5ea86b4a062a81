"""Placement over the vSphere API: the inventory placement needs (hosts' free CPU and memory,
datastores' free space, DRS), DRS's recommendation (ClusterComputeResource.PlaceVm), and moving a
VM to another host of its cluster. Objects are read with the property collector, one call per kind.

vcsim: PlaceVm answers a random host and crashes when given fewer hosts or datastores than the
cluster has, so it is always given all of them; vcsim 0.24.2's clone ignores the host placement
chose (the harness, scripts/vcsim/clonehost.go, puts it there as vCenter does), which is why the
process manager reads runtime.host back after the clone and relocates a VM that landed elsewhere.
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor
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


class Placement:
    def __init__(self, session: Session, side: Executor | None = None) -> None:
        self.session = session
        self._side = side  # calls made beside another (the datacenter's clusters beside the inventory)
        # Hosts and datastores by name and by moid, read in one call per kind and kept: every clone
        # of a placed deployment reads where it landed and may move, and names rarely change. A
        # name not found reads them again; a vanished object clears them (forget).
        self._lock = threading.Lock()
        self._objects: dict[type, dict[str, Any]] = {}
        self._names: dict[str, str] = {}
        # (datacenter, compute resource name) -> (its object, hosts, datastores), as the last
        # inventory read found them: DRS is asked about the cluster the pass just read.
        self._members: dict[tuple[str, str], tuple[Any, list[Any], list[Any]]] = {}

    def forget(self) -> None:
        with self._lock:
            self._objects.clear()
            self._names.clear()
            self._members = {}

    def _known(self, kind: type, refresh: bool) -> dict[str, Any]:
        with self._lock:
            known = self._objects.get(kind)
        if refresh or known is None:
            known = self._remember(kind, inventory.retrieve(self._content, kind, ["name"]))
        return known

    def _remember(self, kind: type, found: list[tuple[Any, dict[str, Any]]]) -> dict[str, Any]:
        known = {str(props["name"]): obj for obj, props in found if "name" in props}
        with self._lock:
            self._objects[kind] = known
            self._names.update({obj._moId: name for name, obj in known.items()})
        return known

    def _name_of(self, kind: type, obj: Any) -> str:
        if obj._moId not in self._names:
            self._known(kind, refresh=True)
        name = self._names.get(obj._moId)
        # Not listed (vcsim lists a few objects late): read its name directly.
        return name if name is not None else str(inventory.properties_of(self._content, obj, ["name"]).get("name", ""))

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
        # Which compute resources are the datacenter's is found (a walk of its folders) while the
        # property collector reads them all: both are read before a deploy's first clone.
        beside = self._side.submit(self._computes, datacenter) if self._side is not None else None
        try:
            found_kinds = self._kinds(content)
        except BaseException:
            if beside is not None:
                beside.result()  # an unknown datacenter is the fault to report
            raise
        computes = {c._moId for c in (beside.result() if beside is not None else self._computes(datacenter))}
        resources = found_kinds[vim.ComputeResource]
        drs = {
            obj._moId: bool(getattr(getattr(props.get("configurationEx"), "drsConfig", None), "enabled", False))
            for obj, props in found_kinds[vim.ClusterComputeResource]
        }
        host_list = found_kinds[vim.HostSystem]
        store_list = found_kinds[vim.Datastore]
        self._remember(vim.HostSystem, host_list)  # names as fresh as this placement pass
        self._remember(vim.Datastore, store_list)
        hosts = {obj._moId: props for obj, props in host_list}
        stores = {obj._moId: props for obj, props in store_list}
        found = []
        members: dict[tuple[str, str], tuple[Any, list[Any], list[Any]]] = {}
        for obj, props in resources:
            if obj._moId not in computes:
                continue
            members[(datacenter, str(props["name"]))] = (
                obj,
                list(props.get("host") or []),
                list(props.get("datastore") or []),
            )
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
        with self._lock:
            self._members = {k: v for k, v in self._members.items() if k[0] != datacenter} | members
        return sorted(found, key=lambda c: c.name)

    @staticmethod
    def _kinds(content: Any) -> dict[type, list[tuple[Any, dict[str, Any]]]]:
        # One property-collector call for the four kinds (not one each).
        return inventory.retrieve_kinds(
            content,
            {
                vim.ComputeResource: ["name", "host", "datastore"],
                vim.ClusterComputeResource: ["configurationEx"],
                vim.HostSystem: HOST_PROPERTIES,
                vim.Datastore: DATASTORE_PROPERTIES,
            },
        )

    def recommend(self, datacenter: str, cluster: str, cpus: int, memory_mib: int) -> DrsRecommendation | None:
        def ask() -> DrsRecommendation | None:
            with self._lock:
                known = self._members.get((datacenter, cluster))
            if known is not None:
                # The cluster with its hosts and datastores as the placement pass's inventory read
                # them: DRS is asked in that pass, about that inventory.
                compute, hosts, datastores = known
            else:
                compute = next((c for c in self._computes(datacenter) if c.name == cluster), None)
                hosts, datastores = (list(compute.host), list(compute.datastore)) if compute is not None else ([], [])
            if not isinstance(compute, vim.ClusterComputeResource):
                raise VCenterObjectNotFoundError(f"cluster '{cluster}' not found in datacenter '{datacenter}'")
            # Every host and datastore of the cluster: vcsim's PlaceVm crashes on fewer.
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
                        host = self._name_of(vim.HostSystem, action.targetHost)
                        return DrsRecommendation(host, self._name_of(vim.Datastore, store) if store else None)
            return None

        return self.session.call(f"ask DRS to place a VM in {cluster}", ask)

    def _named(self, kind: type, name: str, what: str) -> Any:
        found = self._known(kind, refresh=False).get(name) or self._known(kind, refresh=True).get(name)
        if found is None:
            raise VCenterObjectNotFoundError(f"{what} '{name}' not found in vCenter")
        return found

    def relocate(self, vm: Any, host: str, datastore: str | None) -> None:
        def plan() -> Any:
            spec = vim.vm.RelocateSpec(host=self._named(vim.HostSystem, host, "host"))
            if datastore is not None:
                spec.datastore = self._named(vim.Datastore, datastore, "datastore")
            return spec

        spec = self.session.call(f"find host {host}", plan)
        task = self.session.call("relocate to host", lambda: vm.RelocateVM_Task(spec=spec))
        try:
            self.session.wait(task, f"relocation of {vm._moId} to host {host}")
        except VCenterObjectNotFoundError:
            self.forget()  # a cached host or datastore may be what vanished
            raise

    def location(self, vm: Any, known: dict[str, Any] | None = None) -> VmLocation:
        """`known`: runtime.host and datastore as read already (right after a clone)."""

        def read() -> VmLocation:
            props = (
                known
                if known is not None
                else inventory.properties_of(self._content, vm, ["runtime.host", "datastore"])
            )
            host = props.get("runtime.host")
            stores = props.get("datastore") or []
            host_name = self._name_of(vim.HostSystem, host) if host else ""
            store_name = self._name_of(vim.Datastore, stores[0]) if stores else None
            return VmLocation(host_name, store_name or None)

        return self.session.call(f"read where VM {vm._moId} runs", read)

    def host(self, name: str) -> Any:
        return self.session.call(f"find host {name}", lambda: self._named(vim.HostSystem, name, "host"))

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
