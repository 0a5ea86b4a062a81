"""Ports: what the domain needs from the outside world, in domain terms (no vendor types).

Implementations live in adapters/: a pyvmomi driver and an honest in-memory simulation for
vCenter, the system clock. Every implementation of a port runs the same contract suite
(tests/contract/).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.descriptions import VmDescription, VmSelector
from domain.metrics import UsageSample
from domain.observations import VmObservation


@dataclass(frozen=True)
class TemplateInfo:
    """A vCenter template as the catalogue records it."""

    name: str
    guest_id: str
    os_family: str  # "linux" | "windows"
    cpus: int
    memory_mib: int
    disks_gib: tuple[int, ...]
    nics: int
    path: str


class PoolStatus(enum.Enum):
    EXISTS = "exists"
    CREATABLE = "creatable"  # datacenter and cluster exist, the pool (or a parent pool) does not
    UNKNOWN_DATACENTER = "unknown_datacenter"
    UNKNOWN_CLUSTER = "unknown_cluster"


@dataclass(frozen=True)
class CloneSpec:
    """One machine to clone. `vm_name` is deterministic so a retried clone finds its earlier VM."""

    vm_name: str
    template: str
    resource_pool: str
    linked: bool
    cpus: int
    memory_mib: int
    deployment_id: UUID
    machine: str
    source_vm_id: str | None = None  # clone this VM (a move across clusters) instead of the template
    source_snapshot: str | None = None  # with source_vm_id and linked: the snapshot to clone from
    datastore: str | None = None  # placement's choice (domain/placement.py); None: the source's datastore
    host: str | None = None  # placement's choice: vCenter puts the clone there (vcsim does not: see settle)
    # No VM of this name can exist yet (the pass whose write started the deployment's first attempt:
    # no clone of it was ever begun), so the driver may skip its lookup by name before cloning.
    fresh: bool = False


@dataclass(frozen=True)
class GuestIdentity:
    """Guest customisation: hostname, OS family (sysprep or linuxprep) and addressing."""

    hostname: str
    os_family: str
    ip: str | None = None  # None means DHCP
    prefix_length: int | None = None
    gateway: str | None = None
    dns: tuple[str, ...] = ()


@dataclass(frozen=True)
class NicSetting:
    network: str
    mac: str | None = None  # None lets vCenter choose
    exact: bool = False  # the network must exist (a fence's port group): no fallback to the default


@dataclass(frozen=True)
class PortgroupInfo:
    """A distributed port group: its name, vCenter key and VLAN id."""

    name: str
    key: str
    vlan: int


@dataclass(frozen=True)
class NicInfo:
    """One NIC of a VM as vCenter has it: the network's name, the port group key for a
    distributed port group (None for a standard network) and the MAC."""

    network: str
    portgroup_key: str | None
    mac: str | None


@dataclass(frozen=True)
class VmInfo:
    vm_id: str
    name: str
    resource_pool: str
    powered_on: bool
    deployment_id: UUID | None
    machine: str | None
    ip: str | None = None
    hostname: str | None = None
    macs: tuple[str, ...] = field(default=())
    cpus: int = 0
    memory_mib: int = 0


@dataclass(frozen=True)
class PoolUsage:
    vms: int
    powered_on: int
    cpus: int
    memory_mib: int


POWER_ACTIONS = ("on", "off", "reset")
POWER_STATES = ("poweredOn", "poweredOff", "suspended")


@dataclass(frozen=True)
class ConsoleTicket:
    """What a browser needs to open one VM's console, issued for one caller.

    `html5_url` is the page a browser opens to show the console: vCenter's own web console
    (https://<vcenter>/ui/webconsole.html?vmId=&vmName=&serverGuid=&host=&sessionTicket=&thumbprint=,
    signed in by a one-use clone ticket), or a path on Stagekeeper itself when the driver is the
    simulation. `webmks_url` is the HTML5 console's WebSocket (wss://host:port/ticket/<ticket>) for
    clients embedding VMware's WebMKS library; `vmrc_url` opens the VMware Remote Console with
    another one-use clone ticket (vmrc://clone:<ticket>@<vcenter host>/?moid=<vm moid>).
    `expires_at` is None when vCenter does not say (its tickets are short-lived and single-use)."""

    vm_id: str
    webmks_url: str
    vmrc_url: str
    expires_at: datetime | None
    html5_url: str


@dataclass(frozen=True)
class HostCapacity:
    """A host of a cluster: its free CPU (MHz) and memory (MiB) now, and whether VMs may go there
    (connected and not in maintenance)."""

    name: str
    free_cpu_mhz: int
    free_memory_mib: int
    usable: bool = True


@dataclass(frozen=True)
class DatastoreCapacity:
    name: str
    free_mib: int
    capacity_mib: int


@dataclass(frozen=True)
class ClusterCapacity:
    """A compute resource (cluster, or standalone host) of a datacenter, as placement sees it."""

    datacenter: str
    name: str
    drs: bool
    hosts: tuple[HostCapacity, ...]
    datastores: tuple[DatastoreCapacity, ...]


@dataclass(frozen=True)
class DrsRecommendation:
    host: str
    datastore: str | None


@dataclass(frozen=True)
class VmLocation:
    host: str
    datastore: str | None


class VCenterDriver(Protocol):
    """Everything Stagekeeper asks of vCenter. Faults surface as domain errors
    (InfrastructureError with the vendor's message, NotFoundError for missing objects)."""

    name: str

    def list_templates(self) -> list[TemplateInfo]:
        """Every template (VM marked as template) in the inventory."""
        ...

    def inspect_pool(self, path: str) -> PoolStatus:
        """Say whether a resource pool path exists, can be created, or is wrong."""
        ...

    def ensure_pool(self, path: str) -> bool:
        """Create the pool (and missing parents) if needed; True when something was created."""
        ...

    def clone(self, spec: CloneSpec) -> VmInfo:
        """Clone a template into a pool, tagged with the deployment and machine ids.
        If a VM tagged for the same deployment and machine exists, return it instead."""
        ...

    def customize(self, vm_id: str, identity: GuestIdentity) -> None:
        """Apply guest customisation to a powered-off VM (new SID for Windows via sysprep)."""
        ...

    def set_nics(self, vm_id: str, nics: list[NicSetting]) -> None:
        """Attach NICs to networks, with manual MACs where given."""
        ...

    def power_on(self, vm_id: str) -> VmInfo:
        """Power on (no-op when on) and return the VM as it is now."""
        ...

    def power_off(self, vm_id: str) -> None:
        """Power off (no-op when off)."""
        ...

    def relocate(self, vm_id: str, resource_pool: str) -> None:
        """Move a VM into another resource pool."""
        ...

    def destroy(self, vm_id: str) -> None:
        """Destroy a VM; a VM that is already gone is not an error."""
        ...

    def find_vms(self, deployment_id: UUID) -> list[VmInfo]:
        """Every VM tagged with this deployment id."""
        ...

    def describe_vms(self, selector: VmSelector) -> list[VmDescription]:
        """The VMs (and templates) the selector names, as vCenter describes them now, sorted by name.
        An id, name, folder or pool that does not exist: VCenterObjectNotFoundError naming it."""
        ...

    def tag_vm(self, vm_id: str, deployment_id: UUID, machine: str) -> None:
        """Tag an existing VM as machine `machine` of a deployment (idempotent); nothing else changes."""
        ...

    def untag_vm(self, vm_id: str) -> None:
        """Remove Stagekeeper's tags from a VM and leave it as it is; a VM already gone is no error."""
        ...

    def pool_usage(self, path: str) -> PoolUsage:
        """VM count, power state and allocated CPU/memory in a pool."""
        ...

    def console_ticket(self, vm_id: str) -> ConsoleTicket:
        """A fresh console ticket for a powered-on VM (VCenterFaultError when it is not on)."""
        ...

    def screenshot(self, vm_id: str) -> bytes:
        """A PNG of the VM's screen now (VCenterFaultError when it is not on)."""
        ...

    def wait_for_tools(self, vm_id: str, timeout_seconds: float) -> bool:
        """Wait until VMware Tools reports the guest running (guest.toolsRunningStatus is
        guestToolsRunning), at most `timeout_seconds`; say whether it did."""
        ...

    def needs_power_off(self, vm_id: str, cpus: int, memory_mib: int) -> bool:
        """Whether giving the VM this CPU count and memory needs it powered off: it is on and the
        change is not a growth its CPU / memory hot-add settings allow."""
        ...

    def reconfigure(self, vm_id: str, cpus: int, memory_mib: int, disks_gib: tuple[int, ...]) -> None:
        """Set CPU count and memory (VCenterFaultError when `needs_power_off` says so) and disk
        sizes: disk i grows to disks_gib[i], missing disks are added; a disk never shrinks
        (VCenterFaultError). Values already right change nothing."""
        ...

    def power_state(self, vm_id: str) -> str:
        """The power state: poweredOn, poweredOff or suspended."""
        ...

    def power(self, vm_id: str, action: str) -> None:
        """Power a VM "on" or "off" (no-op when already so), or "reset" it (a fault when not on)."""
        ...

    def ensure_portgroup(self, switch: str, name: str, vlan: int) -> bool:
        """Create a port group with this VLAN on the distributed switch unless one of that name
        exists; True when it was created."""
        ...

    def remove_portgroup(self, switch: str, name: str) -> bool:
        """Destroy the port group (VMs must be off it: vCenter refuses otherwise); False when absent."""
        ...

    def list_portgroups(self, switch: str) -> list[PortgroupInfo]:
        """Every port group of the distributed switch."""
        ...

    def has_switch(self, name: str) -> bool:
        """Whether a distributed switch of that name exists (a stage's fences are built on it)."""
        ...

    def has_network(self, datacenter: str, name: str) -> bool:
        """Whether the datacenter has a network (standard, or a distributed port group) of that name;
        False when the datacenter itself does not exist."""
        ...

    def vm_nics(self, vm_id: str) -> list[NicInfo]:
        """The VM's NICs in device order, with their backing."""
        ...

    def set_extra_config(self, vm_id: str, values: dict[str, str]) -> None:
        """Set advanced settings (extraConfig), e.g. guestinfo.* read by the guest's tools."""
        ...

    def create_snapshot(self, vm_id: str, name: str) -> bool:
        """Take a snapshot named `name` (no memory) unless one of that name exists; True when taken."""
        ...

    def revert_snapshot(self, vm_id: str, name: str) -> None:
        """Revert the VM to its snapshot named `name` (VCenterObjectNotFoundError when absent)."""
        ...

    def list_snapshots(self, vm_id: str) -> list[str]:
        """Names of the VM's snapshots, depth first."""
        ...

    def remove_snapshot(self, vm_id: str, name: str) -> bool:
        """Remove the VM's snapshot named `name` (its children stay); False when there is none, or
        no such VM any more."""
        ...

    def sample_usage(self) -> UsageSample:
        """CPU, memory and committed storage of every VM Stagekeeper tagged, and every datastore's
        capacity and free space, in one property-collector retrieval (pages of it)."""

    def managed_vms(self) -> list[VmObservation]:
        """Every VM carrying Stagekeeper's deployment tag, as vCenter has it now (power, CPU, memory,
        disk sizes, NIC networks and MACs, pool, host), read in one property-collector pass."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def placement_inventory(self, datacenter: str) -> list[ClusterCapacity]:
        """Every compute resource of the datacenter with its hosts' free CPU / memory, its datastores'
        free space and whether DRS is enabled, sorted by name (VCenterObjectNotFoundError: no such
        datacenter)."""
        ...

    def recommend_placement(
        self, datacenter: str, cluster: str, cpus: int, memory_mib: int
    ) -> DrsRecommendation | None:
        """DRS's choice of host (and datastore) for a new VM of this size in a DRS cluster (PlaceVm,
        given every host and datastore of the cluster); None when DRS gives none."""
        ...

    def relocate_to_host(self, vm_id: str, host: str, datastore: str | None) -> None:
        """Move a VM to another host of its cluster (and, when given, another datastore)."""
        ...

    def vm_location(self, vm_id: str) -> VmLocation:
        """The host the VM runs on (runtime.host) and its first datastore, as vCenter has them."""
        ...


@dataclass(frozen=True)
class DirectoryUser:
    username: str
    dn: str
    display_name: str
    groups: frozenset[str]  # group DNs, both groupOfNames (member) and posixGroup (memberUid)


class Directory(Protocol):
    """Who users are and which groups they belong to (LDAP). Unreachable: UnavailableError."""

    def authenticate(self, username: str, password: str) -> DirectoryUser | None:
        """The user if the password is right, None if the user or password is wrong."""
        ...

    def groups(self, username: str) -> frozenset[str] | None:
        """The user's group DNs now (None if the user no longer exists)."""
        ...

    def check(self) -> None:
        """Raise UnavailableError unless the directory answers (health checks)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...
