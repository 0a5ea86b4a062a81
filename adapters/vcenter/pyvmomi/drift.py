"""The drift check's read over the vSphere API: every VM tagged by Stagekeeper, in one
property-collector pass over all VMs (plus the resource pool tree, and one pass each for host and
port group names, only when some VM is tagged), whatever the number of deployments."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from adapters.vcenter.pyvmomi import capture, inventory
from domain.observations import VmObservation

if TYPE_CHECKING:
    from adapters.vcenter.pyvmomi.driver import PyVmomiDriver

PROPERTIES = [
    "name",
    "config.template",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "customValue",
    "resourcePool",
    "runtime.powerState",
    "runtime.host",
]
KIB_IN_GIB = 1024 * 1024


def managed_vms(driver: PyVmomiDriver) -> list[VmObservation]:
    return driver.session.call("read managed VMs", partial(_read, driver))


def _read(driver: PyVmomiDriver) -> list[VmObservation]:
    content = driver.session.content
    deployment_key, machine_key = driver.tag_keys()
    vms = inventory.retrieve(content, vim.VirtualMachine, PROPERTIES)
    tagged = []
    for vm, props in vms:
        tags = {v.key: v.value for v in props.get("customValue") or []}  # the last value of a key wins
        deployment = capture._uuid(tags.get(deployment_key) or None)
        if deployment is not None and not props.get("config.template"):
            tagged.append((vm, props, deployment, tags.get(machine_key) or None))
    if not tagged:
        return []
    pools = inventory.pool_paths(content)
    hosts = {h._moId: str(p.get("name", "")) for h, p in inventory.retrieve(content, vim.HostSystem, ["name"])}
    portgroups = {
        str(p.get("key")): str(p.get("name", ""))
        for _, p in inventory.retrieve(content, vim.dvs.DistributedVirtualPortgroup, ["key", "name"])
    }
    found = [_observation(vm, p, d, m, pools, hosts, portgroups) for vm, p, d, m in tagged]
    return sorted(found, key=lambda o: (o.name, o.vm_id))


def _observation(
    vm: Any,
    props: dict[str, Any],
    deployment: Any,
    machine: str | None,
    pools: dict[str, str],
    hosts: dict[str, str],
    portgroups: dict[str, str],
) -> VmObservation:
    devices = props.get("config.hardware.device") or []
    nics = [capture._nic(d, portgroups) for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
    pool = props.get("resourcePool")
    host = props.get("runtime.host")
    return VmObservation(
        vm_id=vm._moId,
        name=str(props.get("name", "")),
        deployment_id=deployment,
        machine=machine,
        power=str(props.get("runtime.powerState") or "poweredOff"),
        cpus=int(props.get("config.hardware.numCPU") or 0),
        memory_mib=int(props.get("config.hardware.memoryMB") or 0),
        disks_gib=tuple(-(-int(d.capacityInKB or 0) // KIB_IN_GIB) for d in disks),
        networks=tuple(n.network for n in nics),
        macs=tuple(n.mac for n in nics if n.mac),
        resource_pool=pools.get(pool._moId, "") if pool is not None else "",
        host=hosts.get(host._moId, "") if host is not None else "",
    )
