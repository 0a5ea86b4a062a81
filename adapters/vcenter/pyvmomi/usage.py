"""Usage sampling over the vSphere API: one property-collector retrieval for VMs and datastores.

One container view holds both kinds; one `RetrievePropertiesEx` (continued page by page, 1,000
objects a page) reads every VM's quick stats, committed storage, datastores and tags, and every
datastore's capacity and free space. No call per VM. vcsim leaves quick stats unset and VM storage
at 0 (see VCSIM.md): the shape is tested there, the figures on the simulated driver.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pyVmomi import vim, vmodl

from domain.metrics import DatastoreUsage, UsageSample, VmUsage

# Only what a sample needs: every property is parsed for every VM of the inventory. Templates carry
# no Stagekeeper tag, so the tag alone picks the VMs.
VM_USAGE = [
    "customValue",
    "runtime.powerState",
    "summary.quickStats.overallCpuUsage",
    "summary.quickStats.guestMemoryUsage",
    "summary.storage.committed",
    "datastore",
]
DATASTORE_USAGE = ["name", "summary.capacity", "summary.freeSpace"]
PAGE = 1000


def retrieve(content: Any) -> tuple[list[tuple[Any, dict[str, Any]]], int]:
    """(object, properties) of every VM and datastore, and the number of vSphere calls made (the
    view's creation and destruction, and each page of the one retrieval)."""
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine, vim.Datastore], True)
    calls = 1
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
                vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=VM_USAGE),
                vmodl.query.PropertyCollector.PropertySpec(type=vim.Datastore, pathSet=DATASTORE_USAGE),
            ],
        )
        collector = content.propertyCollector
        result = collector.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=PAGE))
        calls += 1
        found: list[tuple[Any, dict[str, Any]]] = []
        while result is not None:
            for item in result.objects:
                found.append((item.obj, {p.name: p.val for p in item.propSet}))
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(result.token)
            calls += 1
        return found, calls + 1
    finally:
        view.Destroy()


def sample(content: Any, deployment_key: int, machine_key: int) -> UsageSample:
    """A UsageSample of the VMs tagged with a deployment (custom attribute `deployment_key`)."""
    objects, calls = retrieve(content)
    names = {obj._moId: props.get("name", obj._moId) for obj, props in objects if isinstance(obj, vim.Datastore)}
    vms: list[VmUsage] = []
    datastores: list[DatastoreUsage] = []
    for obj, props in objects:
        if isinstance(obj, vim.Datastore):
            datastores.append(
                DatastoreUsage(
                    name=str(props.get("name", obj._moId)),
                    capacity_bytes=int(props.get("summary.capacity") or 0),
                    free_bytes=int(props.get("summary.freeSpace") or 0),
                )
            )
            continue
        tags = {v.key: v.value for v in props.get("customValue") or []}
        deployment = tags.get(deployment_key)
        if not deployment:
            continue
        try:
            deployment_id = UUID(str(deployment))
        except ValueError:
            continue  # a tag someone else wrote by hand: not a VM Stagekeeper made
        held = props.get("datastore") or []
        vms.append(
            VmUsage(
                vm_id=obj._moId,
                deployment_id=deployment_id,
                machine=tags.get(machine_key) or None,
                powered_on=props.get("runtime.powerState") == "poweredOn",
                cpu_mhz=int(props.get("summary.quickStats.overallCpuUsage") or 0),
                memory_mib=int(props.get("summary.quickStats.guestMemoryUsage") or 0),
                committed_bytes=int(props.get("summary.storage.committed") or 0),
                datastore=names.get(held[0]._moId, held[0]._moId) if held else None,
            )
        )
    return UsageSample(datetime.now(UTC), tuple(vms), tuple(sorted(datastores, key=lambda d: d.name)), calls)
