"""Inventory lookups with the property collector: datacenters, compute resources, pools, VMs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pyVmomi import vim, vmodl

VM_PROPERTIES = [
    "name",
    "config.template",
    "config.guestId",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "customValue",
    "resourcePool",
    "runtime.powerState",
    "guest.ipAddress",
    "guest.hostName",
]


def children(folder: Any) -> Iterator[Any]:
    """Entities under a folder, looking through nested folders."""
    for entity in getattr(folder, "childEntity", []):
        if isinstance(entity, vim.Folder):
            yield from children(entity)
        else:
            yield entity


def datacenter(content: Any, name: str) -> Any | None:
    return next((d for d in children(content.rootFolder) if isinstance(d, vim.Datacenter) and d.name == name), None)


def compute_resource(dc: Any, name: str) -> Any | None:
    return next((c for c in children(dc.hostFolder) if isinstance(c, vim.ComputeResource) and c.name == name), None)


def child_pool(pool: Any, name: str) -> Any | None:
    return next((p for p in pool.resourcePool if p.name == name), None)


def check_session(item: Any) -> None:
    """Raise the NotAuthenticated a property read reports in `missingSet` (vcsim answers an expired
    session that way instead of with a fault), so the session logs in again rather than reading an
    inventory with no properties."""
    for missing in getattr(item, "missingSet", None) or []:
        fault: Any = getattr(getattr(missing, "fault", None), "fault", None)
        if isinstance(fault, vim.fault.NotAuthenticated):
            raise fault


def retrieve(content: Any, kind: type, properties: list[str]) -> list[tuple[Any, dict[str, Any]]]:
    """(object, {property: value}) for every object of `kind`, in one property-collector call per page."""
    return retrieve_kinds(content, {kind: properties})[kind]


def retrieve_kinds(content: Any, wanted: dict[type, list[str]]) -> dict[type, list[tuple[Any, dict[str, Any]]]]:
    """Several kinds of objects in one property-collector call (per page): {kind: [(object,
    {property: value})]}. An object is listed under each wanted kind it is an instance of (a
    cluster is also a ComputeResource), as separate calls per kind would list it."""
    view = content.viewManager.CreateContainerView(content.rootFolder, list(wanted), True)
    try:
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[
                vmodl.query.PropertyCollector.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        vmodl.query.PropertyCollector.TraversalSpec(
                            name="view", path="view", skip=False, type=vim.view.ContainerView
                        )
                    ],
                )
            ],
            propSet=[
                vmodl.query.PropertyCollector.PropertySpec(type=kind, pathSet=properties)
                for kind, properties in wanted.items()
            ],
        )
        collector = content.propertyCollector
        options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=1000)
        result = collector.RetrievePropertiesEx([spec], options)
        found: dict[type, list[tuple[Any, dict[str, Any]]]] = {kind: [] for kind in wanted}
        while result is not None:
            for item in result.objects:
                check_session(item)
                props = {p.name: p.val for p in item.propSet}
                for kind, properties in wanted.items():
                    if isinstance(item.obj, kind):
                        # Only the properties asked for that kind (a subclass gets its parent's too).
                        found[kind].append((item.obj, {k: v for k, v in props.items() if k in properties}))
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(result.token)
        return found
    finally:
        view.Destroy()


def properties_of(content: Any, obj: Any, properties: list[str]) -> dict[str, Any]:
    """Several properties of one object in a single property-collector call."""
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=False)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=properties)],
    )
    result = content.propertyCollector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
    if result is None or not result.objects:
        raise vmodl.fault.ManagedObjectNotFound(obj=obj)
    check_session(result.objects[0])
    return {p.name: p.val for p in result.objects[0].propSet}


def pool_paths(content: Any) -> dict[str, str]:
    """Resource pool moid -> inventory path (/DC/host/Cluster/Resources/...)."""
    paths: dict[str, str] = {}

    def walk(pool: Any, path: str) -> None:
        paths[pool._moId] = path
        for child in pool.resourcePool:
            walk(child, f"{path}/{child.name}")

    for dc in children(content.rootFolder):
        if not isinstance(dc, vim.Datacenter):
            continue
        for compute in children(dc.hostFolder):
            if isinstance(compute, vim.ComputeResource) and compute.resourcePool is not None:
                walk(compute.resourcePool, f"/{dc.name}/host/{compute.name}/Resources")
    return paths


def network(content: Any, dc: Any, name: str) -> Any | None:
    return next((n for n in dc.network if n.name == name), None)


def datacenter_of(entity: Any) -> Any:
    """The datacenter an entity lives in (walking up its parents)."""
    while entity is not None and not isinstance(entity, vim.Datacenter):
        entity = entity.parent
    if entity is None:
        raise vim.fault.NotFound(msg="object is not inside a datacenter")
    return entity
