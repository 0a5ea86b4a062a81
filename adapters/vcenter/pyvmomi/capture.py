"""Reading VMs that exist already (capture), and tagging / untagging them, over the vSphere API.

One property-collector call per object kind (VMs, folders, pools, hosts, datastores, port groups)
describes any number of VMs; nothing here changes a VM except its two custom attributes.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pyVmomi import vim

from adapters.vcenter.pyvmomi import inventory
from domain.descriptions import DiskDescription, NicDescription, VmDescription, VmSelector, pick
from domain.errors import VCenterObjectNotFoundError

if TYPE_CHECKING:
    from adapters.vcenter.pyvmomi.driver import PyVmomiDriver

PROPERTIES = [
    *inventory.VM_PROPERTIES,
    "config.annotation",
    "parent",
    "runtime.host",
    "datastore",
    "snapshot",
]
ADAPTERS = (
    (vim.vm.device.VirtualE1000e, "e1000e"),  # before VirtualE1000: not a subclass, but keep the order explicit
    (vim.vm.device.VirtualE1000, "e1000"),
    (vim.vm.device.VirtualVmxnet3, "vmxnet3"),
    (vim.vm.device.VirtualVmxnet2, "vmxnet2"),
    (vim.vm.device.VirtualPCNet32, "pcnet32"),
    (vim.vm.device.VirtualSriovEthernetCard, "sriov"),
)


def describe(driver: PyVmomiDriver, selector: VmSelector) -> list[VmDescription]:
    return driver.session.call("describe VMs", partial(_describe, driver, selector))


def _describe(driver: PyVmomiDriver, selector: VmSelector) -> list[VmDescription]:
    content = driver.session.content
    vms = inventory.retrieve(content, vim.VirtualMachine, PROPERTIES)
    names = {vm._moId: str(props.get("name", "")) for vm, props in vms}
    pools = inventory.pool_paths(content)
    folders = folder_paths(content)
    if selector.vms:
        wanted = set(pick(selector.vms, names))
        chosen = [(vm, props) for vm, props in vms if vm._moId in wanted]
    elif selector.folder is not None:
        if selector.folder not in folders.values():
            raise VCenterObjectNotFoundError(f"folder '{selector.folder}' not found in vCenter")
        chosen = [(vm, p) for vm, p in vms if _inside(folders.get(_moid(p.get("parent")), ""), selector.folder)]
    else:
        assert selector.resource_pool is not None
        if selector.resource_pool not in pools.values():
            raise VCenterObjectNotFoundError(f"resource pool '{selector.resource_pool}' not found in vCenter")
        chosen = [
            (vm, p) for vm, p in vms if _inside(pools.get(_moid(p.get("resourcePool")), ""), selector.resource_pool)
        ]
    hosts = _names(content, vim.HostSystem)
    datastores = _names(content, vim.Datastore)
    portgroups = {
        str(props.get("key")): str(props.get("name", ""))
        for _, props in inventory.retrieve(content, vim.dvs.DistributedVirtualPortgroup, ["key", "name"])
    }
    keys = driver.tag_keys()
    found = [_description(vm, p, pools, folders, hosts, datastores, portgroups, keys) for vm, p in chosen]
    return sorted(found, key=lambda d: (d.name, d.vm_id))


def _description(
    vm: Any,
    props: dict[str, Any],
    pools: dict[str, str],
    folders: dict[str, str],
    hosts: dict[str, str],
    datastores: dict[str, str],
    portgroups: dict[str, str],
    keys: tuple[int, int],
) -> VmDescription:
    devices = props.get("config.hardware.device") or []
    guest = str(props.get("config.guestId") or "otherGuest")
    tags = {v.key: v.value for v in props.get("customValue") or []}  # the last value of a key wins
    deployment = tags.get(keys[0]) or None
    return VmDescription(
        vm_id=vm._moId,
        name=str(props.get("name", "")),
        guest_id=guest,
        os_family="windows" if guest.lower().startswith("win") else "linux",
        cpus=int(props.get("config.hardware.numCPU") or 0),
        memory_mib=int(props.get("config.hardware.memoryMB") or 0),
        disks=tuple(_disk(d) for d in devices if isinstance(d, vim.vm.device.VirtualDisk)),
        nics=tuple(_nic(d, portgroups) for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)),
        annotation=str(props.get("config.annotation") or ""),
        folder=folders.get(_moid(props.get("parent")), ""),
        resource_pool=pools.get(_moid(props.get("resourcePool")), ""),
        host=hosts.get(_moid(props.get("runtime.host")), ""),
        datastores=tuple(sorted(datastores.get(d._moId, d._moId) for d in props.get("datastore") or [])),
        is_template=bool(props.get("config.template")),
        powered_on=props.get("runtime.powerState") == "poweredOn",
        ip=props.get("guest.ipAddress") or None,
        hostname=props.get("guest.hostName") or None,
        snapshots=tuple(_snapshot_names(props.get("snapshot"))),
        deployment_id=_uuid(deployment),
        machine=(tags.get(keys[1]) or None) if deployment else None,
    )


def _disk(device: Any) -> DiskDescription:
    backing = device.backing
    file = str(getattr(backing, "fileName", "") or "")
    if getattr(backing, "thinProvisioned", False):
        provisioning = "thin"
    elif getattr(backing, "eagerlyScrub", False):
        provisioning = "eager-zeroed-thick"
    else:
        provisioning = "thick"
    chain: list[str] = []
    parent = getattr(backing, "parent", None)
    while parent is not None and len(chain) < 256:
        chain.append(str(getattr(parent, "fileName", "") or ""))
        parent = getattr(parent, "parent", None)
    label = getattr(getattr(device, "deviceInfo", None), "label", None) or f"disk-{device.key}"
    return DiskDescription(
        label=str(label),
        capacity_kib=int(device.capacityInKB or 0),
        provisioning=provisioning,
        file=file,
        datastore=file[1 : file.index("]")] if file.startswith("[") and "]" in file else "",
        delta_chain=tuple(chain),
    )


def _nic(device: Any, portgroups: dict[str, str]) -> NicDescription:
    backing = device.backing
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
        key = str(backing.port.portgroupKey) if backing.port is not None else ""
        network = portgroups.get(key, key)
    else:
        network = str(getattr(backing, "deviceName", "") or "")
    adapter = next((name for kind, name in ADAPTERS if isinstance(device, kind)), type(device).__name__)
    label = getattr(getattr(device, "deviceInfo", None), "label", None) or f"nic-{device.key}"
    return NicDescription(label=str(label), network=network, mac=device.macAddress or None, adapter=adapter)


def _snapshot_names(info: Any) -> list[str]:
    names: list[str] = []
    stack = list(reversed(getattr(info, "rootSnapshotList", None) or []))
    while stack:
        tree = stack.pop()
        names.append(str(tree.name))
        stack.extend(reversed(tree.childSnapshotList or []))
    return names


def folder_paths(content: Any) -> dict[str, str]:
    """VM folder moid -> inventory path (/DC0/vm/...)."""
    paths: dict[str, str] = {}

    def walk(folder: Any, path: str) -> None:
        paths[folder._moId] = path
        for child in folder.childEntity:
            if isinstance(child, vim.Folder):
                walk(child, f"{path}/{child.name}")

    for dc in inventory.children(content.rootFolder):
        if isinstance(dc, vim.Datacenter):
            walk(dc.vmFolder, f"/{dc.name}/vm")
    return paths


def _names(content: Any, kind: type) -> dict[str, str]:
    return {obj._moId: str(props.get("name", "")) for obj, props in inventory.retrieve(content, kind, ["name"])}


def _moid(ref: Any) -> str:
    return str(ref._moId) if ref is not None else ""


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None  # a value Stagekeeper never wrote


def tag(driver: PyVmomiDriver, vm_id: str, deployment_id: UUID, machine: str) -> None:
    deployment_key, machine_key = driver.tag_keys()
    current = _tags(driver, vm_id)
    wanted = {deployment_key: str(deployment_id), machine_key: machine}
    _set(driver, vm_id, {k: v for k, v in wanted.items() if current.get(k) != v})


def untag(driver: PyVmomiDriver, vm_id: str) -> None:
    try:
        current = _tags(driver, vm_id)
    except VCenterObjectNotFoundError:
        return  # gone: nothing to let go of
    _set(driver, vm_id, {k: "" for k in driver.tag_keys() if current.get(k)})


def _tags(driver: PyVmomiDriver, vm_id: str) -> dict[int, str]:
    vm = driver.vm_ref(vm_id)
    props = driver.session.call(
        f"read tags of {vm_id}", lambda: inventory.properties_of(driver.session.content, vm, ["customValue"])
    )
    return {v.key: v.value for v in props.get("customValue") or []}


def _set(driver: PyVmomiDriver, vm_id: str, values: dict[int, str]) -> None:
    vm = driver.vm_ref(vm_id)
    manager = driver.session.content.customFieldsManager
    for key, value in values.items():
        driver.session.call(f"tag {vm_id}", partial(manager.SetField, entity=vm, key=key, value=value))
