"""Distributed switches and port groups (fenced networks), and reading a VM's NIC backings."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from adapters.vcenter.pyvmomi import inventory
from domain.ports import NicInfo, PortgroupInfo


def switch(content: Any, name: str) -> Any | None:
    """The distributed switch named `name`, in any datacenter."""
    found = inventory.retrieve(content, vim.DistributedVirtualSwitch, ["name"])
    return next((obj for obj, props in found if props.get("name") == name), None)


def portgroups(content: Any, dvs: Any) -> list[tuple[Any, PortgroupInfo]]:
    """The switch's port groups with their VLAN (0 when none or a trunk), in one property-collector
    call (reading each group's config one by one costs a round trip per group)."""
    found = inventory.retrieve(
        content,
        vim.dvs.DistributedVirtualPortgroup,
        ["config.name", "config.key", "config.distributedVirtualSwitch", "config.defaultPortConfig"],
    )
    result = []
    for group, props in found:
        owner = props.get("config.distributedVirtualSwitch")
        if owner is None or owner._moId != dvs._moId or "config.name" not in props:
            continue
        vlan = getattr(getattr(props.get("config.defaultPortConfig"), "vlan", None), "vlanId", 0)
        info = PortgroupInfo(
            name=props["config.name"], key=props["config.key"], vlan=vlan if isinstance(vlan, int) else 0
        )
        result.append((group, info))
    return result


def portgroup_spec(name: str, vlan: int) -> Any:
    """An early-binding port group tagged with one VLAN id (the fence's isolation)."""
    policy = vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(
        vlan=vim.dvs.VmwareDistributedVirtualSwitch.VlanIdSpec(vlanId=vlan, inherited=False)
    )
    return vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        name=name, type="earlyBinding", numPorts=16, autoExpand=True, defaultPortConfig=policy
    )


def nics(devices: list[Any], names_by_key: dict[str, str]) -> list[NicInfo]:
    """A VM's NICs in device order: network name, DV port group key (None for a standard network), MAC."""
    found = []
    for device in devices:
        if not isinstance(device, vim.vm.device.VirtualEthernetCard):
            continue
        backing = device.backing
        mac = str(device.macAddress) if device.macAddress else None
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
            key = str(backing.port.portgroupKey)
            found.append(NicInfo(network=names_by_key.get(key, key), portgroup_key=key, mac=mac))
        else:
            found.append(NicInfo(network=str(getattr(backing, "deviceName", "") or ""), portgroup_key=None, mac=mac))
    return found


def portgroup_names(content: Any) -> dict[str, str]:
    """DV port group key -> name (the property collector lists only objects that still exist;
    vcsim keeps a destroyed port group in `datacenter.network`)."""
    found = inventory.retrieve(content, vim.dvs.DistributedVirtualPortgroup, ["name", "key"])
    return {str(props["key"]): str(props["name"]) for _, props in found if "key" in props and "name" in props}


def network_named(content: Any, dc: Any, name: str) -> Any | None:
    """The network (standard or distributed port group) called `name` inside datacenter `dc`."""
    for obj, props in inventory.retrieve(content, vim.Network, ["name"]):
        if props.get("name") == name and inventory.datacenter_of(obj)._moId == dc._moId:
            return obj
    return None
