"""What a captured machine keeps of its VM as vCenter described it (inside configuration machines)."""

from __future__ import annotations

from pydantic import Field

from api.responses import Out


class CapturedDisk(Out):
    label: str
    capacity_kib: int
    provisioning: str = Field(description="thin, thick or eager-zeroed-thick")
    file: str
    datastore: str
    delta_chain: list[str] = Field(description="Parent backing files (empty: no snapshot delta disks)")


class CapturedNic(Out):
    label: str
    network: str = Field(description="The configuration network (named after the port group)")
    port_group: str
    mac: str | None
    adapter: str = Field(description="e1000, e1000e, vmxnet3, ...")


class CapturedVm(Out):
    vm_id: str
    vm_name: str
    guest_id: str
    annotation: str
    folder: str
    resource_pool: str
    host: str
    datastores: list[str]
    ip: str | None = Field(description="From VMware Tools, when it knew")
    hostname: str | None = Field(description="From VMware Tools, when it knew")
    disks: list[CapturedDisk]
    nics: list[CapturedNic]
