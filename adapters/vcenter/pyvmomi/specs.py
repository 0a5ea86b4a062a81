"""vSphere specs the driver sends: guest customisation, NIC backings, resource pool allocation."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from domain.errors import VCenterFaultError
from domain.ports import GuestIdentity


def customization(identity: GuestIdentity, nics: int = 1) -> Any:
    """LinuxPrep, or Sysprep with a new SID for Windows; a static IP or DHCP on the first NIC, DHCP
    on the others (vCenter wants one adapter mapping per NIC: NicSettingMismatch otherwise)."""
    hostname = vim.vm.customization.FixedName(name=identity.hostname)
    if identity.os_family == "windows":
        ident: Any = vim.vm.customization.Sysprep(
            guiUnattended=vim.vm.customization.GuiUnattended(autoLogon=False, autoLogonCount=0, timeZone=85),
            userData=vim.vm.customization.UserData(
                computerName=hostname, fullName="Stagekeeper", orgName="Stagekeeper", productId=""
            ),
            identification=vim.vm.customization.Identification(joinWorkgroup="WORKGROUP"),
        )
        # Sysprep with changeSID gives every clone its own machine SID.
        options: Any = vim.vm.customization.WinOptions(changeSID=True, deleteAccounts=False)
    else:
        ident = vim.vm.customization.LinuxPrep(hostName=hostname, domain="localdomain")
        options = vim.vm.customization.LinuxOptions()
    if identity.ip is None:
        address: Any = vim.vm.customization.IPSettings(ip=vim.vm.customization.DhcpIpGenerator())
    else:
        address = vim.vm.customization.IPSettings(
            ip=vim.vm.customization.FixedIp(ipAddress=identity.ip),
            subnetMask=netmask(identity.prefix_length or 24),
            gateway=[identity.gateway] if identity.gateway else [],
        )
    spec = vim.vm.customization.Specification(
        identity=ident,
        options=options,
        globalIPSettings=vim.vm.customization.GlobalIPSettings(dnsServerList=list(identity.dns)),
        nicSettingMap=[vim.vm.customization.AdapterMapping(adapter=address)]
        + [
            vim.vm.customization.AdapterMapping(
                adapter=vim.vm.customization.IPSettings(ip=vim.vm.customization.DhcpIpGenerator())
            )
            for _ in range(max(nics, 1) - 1)
        ],
    )
    return spec


def backing(network: Any, name: str | None = None) -> Any:
    """A NIC's backing on `network` (`name`: its name, when known, saves reading it)."""
    if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
        switch = network.config.distributedVirtualSwitch
        assert switch is not None
        connection = vim.dvs.PortConnection(portgroupKey=network.key, switchUuid=switch.uuid)
        return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=connection)
    return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=name or network.name, network=network)


def pool_spec() -> Any:
    def allocation() -> Any:
        return vim.ResourceAllocationInfo(
            reservation=0, expandableReservation=True, limit=-1,
            shares=vim.SharesInfo(level=vim.SharesInfo.Level.normal, shares=0),
        )  # fmt: skip

    return vim.ResourceConfigSpec(cpuAllocation=allocation(), memoryAllocation=allocation())


def netmask(prefix: int) -> str:
    bits = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return ".".join(str((bits >> shift) & 0xFF) for shift in (24, 16, 8, 0))


GIB_IN_KB = 1024 * 1024


def disk_changes(devices: list[Any], disks_gib: tuple[int, ...], vm_id: str) -> list[Any]:
    """Device changes that make disk i at least disks_gib[i] GiB: grow existing disks, add missing
    ones (thin, on the first disk's controller and datastore). A disk never shrinks in vSphere."""
    disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
    changes: list[Any] = []
    used = {(d.controllerKey, d.unitNumber) for d in devices if getattr(d, "controllerKey", None) is not None}
    for index, size in enumerate(disks_gib):
        wanted = size * GIB_IN_KB
        if index < len(disks):
            disk = disks[index]
            if disk.capacityInKB > wanted:
                raise VCenterFaultError(
                    f"vCenter fault during reconfigure: disk {index} of {vm_id} cannot shrink "
                    f"from {disk.capacityInKB // GIB_IN_KB} GiB to {size} GiB"
                )
            if disk.capacityInKB < wanted:
                disk.capacityInKB = wanted
                changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk))
            continue
        if not disks:
            raise VCenterFaultError(f"vCenter fault during reconfigure: {vm_id} has no disk controller to add to")
        controller = disks[0].controllerKey
        unit = next(u for u in range(16) if u != 7 and (controller, u) not in used)  # 7: the SCSI controller
        used.add((controller, unit))
        first = disks[0].backing
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            diskMode="persistent", thinProvisioned=True, datastore=first.datastore if first is not None else None
        )
        disk = vim.vm.device.VirtualDisk(
            key=-(100 + index), controllerKey=controller, unitNumber=unit, capacityInKB=wanted, backing=backing
        )
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk))
    return changes
