"""SimulatedVCenter: an in-memory vCenter inventory for the embedded default and fast tests.

It is a simulation, named as such everywhere it is used: no VM runs anywhere. It mirrors the
default inventory of govmomi's vcsim (datacenter DC0, cluster DC0_C0, standalone host DC0_H0)
so the same resource-pool paths work against both, and it keeps its state in a JSON file when
given one, so a restarted service still sees the VMs it "created".
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from uuid import NAMESPACE_DNS, UUID, uuid5

from adapters.simulator_state import FileState, InventoryState
from adapters.vcenter import simulated_capture, simulated_drift, simulated_usage
from adapters.vcenter.picture import draw
from adapters.vcenter.simulated_media import SimulatedMedia
from adapters.vcenter.simulated_placement import SimulatedPlacement
from domain.descriptions import VmDescription, VmSelector
from domain.errors import VCenterFaultError, VCenterObjectNotFoundError
from domain.metrics import UsageSample
from domain.observations import VmObservation
from domain.ports import (
    POWER_ACTIONS,
    CloneSpec,
    ConsoleTicket,
    GuestIdentity,
    NicInfo,
    NicSetting,
    PoolStatus,
    PoolUsage,
    PortgroupInfo,
    TemplateInfo,
    VmInfo,
)

DEFAULT_TEMPLATES: tuple[TemplateInfo, ...] = (
    TemplateInfo("tpl-ubuntu-2404", "ubuntu64Guest", "linux", 2, 2048, (16,), 1, "/DC0/vm/tpl-ubuntu-2404"),
    TemplateInfo("tpl-rhel-9", "rhel9_64Guest", "linux", 2, 4096, (20,), 1, "/DC0/vm/tpl-rhel-9"),
    TemplateInfo(
        "tpl-windows-2022",
        "windows2019srvNext_64Guest",
        "windows",
        2,
        8192,
        (40,),
        1,
        "/DC0/vm/tpl-windows-2022",
    ),
)
# Where the simulated vCenter "is": a reserved name (RFC 2606), so a console link leads nowhere real.
CONSOLE_HOST = "vcenter.simulated.invalid"
TICKET_LIFETIME = timedelta(minutes=5)
# The simulation's web console is a page Stagekeeper serves (api/ui/simulated_console.py), with
# the query vCenter's own /ui/webconsole.html takes; it shows the simulated VM's picture.
WEB_CONSOLE_PATH = "/ui/simulated-vcenter/webconsole.html"
SERVER_GUID = str(uuid5(NAMESPACE_DNS, CONSOLE_HOST))
# vcsim's default compute resources: cluster DC0_C0 and standalone hosts DC0_H0, DC0_H1.
DEFAULT_CLUSTERS: dict[str, tuple[str, ...]] = {"DC0": ("DC0_C0", "DC0_H0", "DC0_H1")}
# vcsim's standard network, and its distributed switch DVS0 with DC0_DVPG0..2 (the harness's -pg 3).
STANDARD_NETWORKS = ("VM Network",)
DEFAULT_PORTGROUPS: dict[str, dict[str, dict[str, Any]]] = {
    "DVS0": {f"DC0_DVPG{i}": {"key": f"dvportgroup-{13 + 2 * i}", "vlan": 0} for i in range(3)}
}


@dataclass
class _Vm:
    vm_id: str
    name: str
    resource_pool: str
    template: str
    cpus: int
    memory_mib: int
    linked: bool
    deployment_id: str
    machine: str
    powered_on: bool = False
    hostname: str | None = None
    ip: str | None = None
    os_family: str | None = None
    nics: list[dict[str, Any]] = field(default_factory=list)
    # What a VM made outside Stagekeeper carries (see add_existing_vm); clones leave the defaults.
    guest_id: str = ""
    disks: list[dict[str, Any]] = field(default_factory=list)
    annotation: str = ""
    folder: str = ""
    host: str = ""
    snapshots: list[str] = field(default_factory=list)
    is_template: bool = False
    disks_gib: list[int] | None = None  # None: the template's disks, as cloned
    hot_add: bool = False  # CPU and memory hot-add enabled (vSphere's default: off)
    extra_config: dict[str, str] = field(default_factory=dict)
    datastore: str = ""  # where its disks are (simulated_placement.py)
    cdroms: list[str] = field(default_factory=list)  # ISO backings, "[datastore] path"

    def info(self) -> VmInfo:
        return VmInfo(
            vm_id=self.vm_id,
            name=self.name,
            resource_pool=self.resource_pool,
            powered_on=self.powered_on,
            deployment_id=UUID(self.deployment_id) if self.deployment_id else None,
            machine=self.machine or None,
            ip=self.ip if self.powered_on else None,
            hostname=self.hostname if self.powered_on else None,
            macs=tuple(n["mac"] for n in self.nics if n.get("mac")),
            cpus=self.cpus,
            memory_mib=self.memory_mib,
        )


class SimulatedVCenter(SimulatedPlacement, SimulatedMedia):
    """A vCenter simulation with the driver port's semantics (idempotent clone by tag, etc.)."""

    name = "simulated"

    def __init__(
        self,
        state_file: Path | None = None,
        templates: tuple[TemplateInfo, ...] = DEFAULT_TEMPLATES,
        clusters: dict[str, tuple[str, ...]] | None = None,
        task_seconds: float = 0.0,
        state: InventoryState | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._state = state if state is not None else FileState(state_file) if state_file is not None else None
        self._templates = {t.name: t for t in templates}
        self._clusters = clusters or DEFAULT_CLUSTERS
        self._task_seconds = task_seconds
        self._pools: set[str] = {f"/{dc}/host/{c}/Resources" for dc, cs in self._clusters.items() for c in cs}
        self._vms: dict[str, _Vm] = {}
        self._counter = 0
        self._faults: dict[str, list[str]] = {}
        self._dhcp_next = 10
        # Web console tickets issued by this process: ticket -> (vm id, expiry). Like vCenter's,
        # they are never persisted; a restarted process has none.
        self._console_tickets: dict[str, tuple[str, datetime]] = {}
        self._portgroups = {switch: dict(groups) for switch, groups in DEFAULT_PORTGROUPS.items()}
        self._files: dict[str, dict[str, Any]] = {}  # datastore files (simulated_media.py)
        if self._state is not None:
            self._load()

    # -- test hooks (fault injection), the same idea as the vcsim harness's /_control -----------
    def inject_fault(self, method: str, message: str, count: int = 1) -> None:
        with self._lock:
            self._faults.setdefault(method, []).extend([message] * count)

    def _maybe_fail(self, method: str) -> None:
        queue = self._faults.get(method)
        if queue:
            raise VCenterFaultError(f"vCenter fault during {method}: {queue.pop(0)}")

    def _work(self) -> None:
        # Model the latency of a vCenter task outside the lock, so parallel tasks overlap.
        if self._task_seconds:
            time.sleep(self._task_seconds)

    # -- persistence -----------------------------------------------------------------------------
    def _load(self) -> None:
        assert self._state is not None
        data = self._state.load()
        if data is None:
            return
        self._pools.update(data.get("pools", []))
        self._vms = {v["vm_id"]: _Vm(**v) for v in data.get("vms", [])}
        self._counter = int(data.get("counter", 0))
        self._dhcp_next = int(data.get("dhcp_next", 10))
        self._portgroups.update(data.get("portgroups", {}))
        self._files.update(data.get("files", {}))

    def _save(self) -> None:
        if self._state is None:
            return
        self._state.save(
            {
                "pools": sorted(self._pools),
                "vms": [asdict(v) for v in self._vms.values()],
                "counter": self._counter,
                "dhcp_next": self._dhcp_next,
                "portgroups": self._portgroups,
                "files": self._files,
            }
        )

    # -- port ------------------------------------------------------------------------------------
    def list_templates(self) -> list[TemplateInfo]:
        with self._lock:
            self._maybe_fail("list_templates")
            return sorted(self._templates.values(), key=lambda t: t.name)

    def inspect_pool(self, path: str) -> PoolStatus:
        parts = path.strip("/").split("/")
        with self._lock:
            if parts[0] not in self._clusters:
                return PoolStatus.UNKNOWN_DATACENTER
            if len(parts) < 3 or parts[2] not in self._clusters[parts[0]]:
                return PoolStatus.UNKNOWN_CLUSTER
            return PoolStatus.EXISTS if path in self._pools else PoolStatus.CREATABLE

    def ensure_pool(self, path: str) -> bool:
        status = self.inspect_pool(path)
        if status in (PoolStatus.UNKNOWN_DATACENTER, PoolStatus.UNKNOWN_CLUSTER):
            raise VCenterObjectNotFoundError(f"cannot create resource pool {path}: {status.value.replace('_', ' ')}")
        with self._lock:
            self._maybe_fail("ensure_pool")
            if path in self._pools:
                return False
            parts = path.strip("/").split("/")
            for depth in range(5, len(parts) + 1):
                self._pools.add("/" + "/".join(parts[:depth]))
            self._save()
            return True

    def clone(self, spec: CloneSpec) -> VmInfo:
        with self._lock:
            # A fresh clone is not looked for (as the pyvmomi driver skips its lookup by name): a VM
            # that exists after all is a DuplicateName, as vCenter answers.
            for vm in () if spec.fresh else self._vms.values():
                same = vm.deployment_id == str(spec.deployment_id) and vm.machine == spec.machine
                if same and (vm.name == spec.vm_name or spec.source_vm_id is None):
                    return vm.info()
            self._maybe_fail("clone")
            source = self._vms.get(spec.source_vm_id) if spec.source_vm_id else None
            if spec.source_vm_id and source is None:
                raise VCenterObjectNotFoundError(f"VM {spec.source_vm_id} not found in vCenter")
            if source is not None and spec.source_snapshot and spec.source_snapshot not in source.snapshots:
                raise VCenterObjectNotFoundError(f"VM {source.vm_id} has no snapshot '{spec.source_snapshot}'")
            if source is None and spec.template not in self._templates:
                raise VCenterObjectNotFoundError(f"template '{spec.template}' not found in vCenter")
            if spec.resource_pool not in self._pools:
                raise VCenterObjectNotFoundError(f"resource pool '{spec.resource_pool}' not found in vCenter")
            if any(vm.name == spec.vm_name for vm in self._vms.values()):
                raise VCenterFaultError(f"vCenter fault during clone: DuplicateName {spec.vm_name}")
        self._work()
        with self._lock:
            self._counter += 1
            source = self._vms.get(spec.source_vm_id) if spec.source_vm_id else None
            os_family = source.os_family if source else self._templates[spec.template].os_family
            vm = _Vm(
                vm_id=f"vm-{self._counter}",
                name=spec.vm_name,
                resource_pool=spec.resource_pool,
                template=spec.template,
                cpus=spec.cpus,
                memory_mib=spec.memory_mib,
                linked=spec.linked,
                deployment_id=str(spec.deployment_id),
                machine=spec.machine,
                os_family=os_family,
                # A clone of a VM keeps its guest identity and NICs (like vCenter's clone of a VM).
                hostname=source.hostname if source else None,
                ip=source.ip if source else None,
                nics=[dict(n) for n in source.nics] if source else [],
            )
            self._initial_host(vm, spec.datastore)
            self._vms[vm.vm_id] = vm
            self._save()
            return vm.info()

    def _vm(self, vm_id: str) -> _Vm:
        vm = self._vms.get(vm_id)
        if vm is None:
            raise VCenterObjectNotFoundError(f"VM {vm_id} not found in vCenter")
        return vm

    def customize(self, vm_id: str, identity: GuestIdentity) -> None:
        with self._lock:
            vm = self._vm(vm_id)
            self._maybe_fail("customize")
            if vm.powered_on:
                raise VCenterFaultError(f"vCenter fault during customize: VM {vm.name} is powered on")
            if identity.os_family != vm.os_family:
                raise VCenterFaultError(
                    f"vCenter fault during customize: {identity.os_family} customisation on a {vm.os_family} guest"
                )
            vm.hostname = identity.hostname
            if identity.ip is None:
                # Stands in for the DHCP server of the simulated network.
                vm.ip = f"192.0.2.{self._dhcp_next % 254 + 1}"
                self._dhcp_next += 1
            else:
                vm.ip = identity.ip
            self._save()

    def set_nics(self, vm_id: str, nics: list[NicSetting]) -> None:
        with self._lock:
            vm = self._vm(vm_id)
            self._maybe_fail("set_nics")
            keys = {name: g["key"] for groups in self._portgroups.values() for name, g in groups.items()}
            for nic in nics:
                if nic.exact and nic.network not in keys and nic.network not in STANDARD_NETWORKS:
                    raise VCenterObjectNotFoundError(f"network '{nic.network}' not found")
            vm.nics = [{"network": n.network, "mac": n.mac, "portgroup_key": keys.get(n.network)} for n in nics]
            self._save()

    def power_on(self, vm_id: str) -> VmInfo:
        with self._lock:
            self._vm(vm_id)
            self._maybe_fail("power_on")
        self._work()
        with self._lock:
            vm = self._vm(vm_id)
            vm.powered_on = True
            self._save()
            return vm.info()

    def power_off(self, vm_id: str) -> None:
        with self._lock:
            vm = self._vm(vm_id)
            self._maybe_fail("power_off")
            vm.powered_on = False
            self._save()

    def relocate(self, vm_id: str, resource_pool: str) -> None:
        with self._lock:
            vm = self._vm(vm_id)
            self._maybe_fail("relocate")
            if resource_pool not in self._pools:
                raise VCenterObjectNotFoundError(f"resource pool '{resource_pool}' not found in vCenter")
            vm.resource_pool = resource_pool
            self._save()

    def destroy(self, vm_id: str) -> None:
        with self._lock:
            if vm_id not in self._vms:
                return
            self._maybe_fail("destroy")
            if self._vms[vm_id].powered_on:
                raise VCenterFaultError(f"vCenter fault during destroy: VM {vm_id} is powered on")
            del self._vms[vm_id]
            self._save()

    def find_vms(self, deployment_id: UUID) -> list[VmInfo]:
        with self._lock:
            return sorted(
                (vm.info() for vm in self._vms.values() if vm.deployment_id == str(deployment_id)),
                key=lambda v: v.name,
            )

    def describe_vms(self, selector: VmSelector) -> list[VmDescription]:
        with self._lock:
            self._maybe_fail("describe_vms")
            return simulated_capture.describe(list(self._vms.values()), self._pools, selector)

    def tag_vm(self, vm_id: str, deployment_id: UUID, machine: str) -> None:
        with self._lock:
            vm = self._vm(vm_id)
            self._maybe_fail("tag_vm")
            vm.deployment_id, vm.machine = str(deployment_id), machine
            self._save()

    def untag_vm(self, vm_id: str) -> None:
        with self._lock:
            vm = self._vms.get(vm_id)
            if vm is None:
                return
            self._maybe_fail("untag_vm")
            vm.deployment_id, vm.machine = "", ""
            self._save()

    def add_existing_vm(self, name: str, resource_pool: str, **details: Any) -> str:
        """Put a VM made outside Stagekeeper into the simulated inventory (what capture reads);
        `details` are _Vm fields (cpus, memory_mib, nics, disks, guest_id, ip, ...). Returns its id."""
        with self._lock:
            if resource_pool not in self._pools:
                raise VCenterObjectNotFoundError(f"resource pool '{resource_pool}' not found in vCenter")
            self._counter += 1
            vm = simulated_capture.existing_vm(f"vm-{self._counter}", name, resource_pool, details)
            self._vms[vm.vm_id] = vm
            self._save()
            return vm.vm_id

    def pool_usage(self, path: str) -> PoolUsage:
        with self._lock:
            vms = [vm for vm in self._vms.values() if vm.resource_pool == path]
            return PoolUsage(
                vms=len(vms),
                powered_on=sum(vm.powered_on for vm in vms),
                cpus=sum(vm.cpus for vm in vms),
                memory_mib=sum(vm.memory_mib for vm in vms),
            )

    def _powered_on(self, vm_id: str, what: str) -> _Vm:
        vm = self._vm(vm_id)
        if not vm.powered_on:
            # vCenter answers consoles, screenshots and resets of a VM that is off the same way.
            raise VCenterFaultError(f"vCenter fault during {what}: InvalidPowerState: {vm.name} is poweredOff")
        return vm

    def console_ticket(self, vm_id: str) -> ConsoleTicket:
        now = datetime.now(UTC)
        expires_at = now + TICKET_LIFETIME
        session_ticket = f"cst-SIM-{secrets.token_hex(16)}"
        with self._lock:
            vm = self._powered_on(vm_id, "console ticket")
            self._maybe_fail("console_ticket")
            self._console_tickets = {t: kept for t, kept in self._console_tickets.items() if kept[1] > now}
            self._console_tickets[session_ticket] = (vm_id, expires_at)
        query = {
            "vmId": vm_id, "vmName": vm.name, "serverGuid": SERVER_GUID, "host": f"{CONSOLE_HOST}:443",
            "sessionTicket": session_ticket,
        }  # fmt: skip
        # A new random ticket per call, as vCenter issues them. The WebMKS and VMRC addresses lead
        # nowhere (see CONSOLE_HOST); the web console page is served by Stagekeeper itself.
        return ConsoleTicket(
            vm_id=vm_id,
            webmks_url=f"wss://{CONSOLE_HOST}:443/ticket/{secrets.token_hex(16)}",
            vmrc_url=f"vmrc://clone:{secrets.token_hex(16)}@{CONSOLE_HOST}/?moid={vm_id}",
            expires_at=expires_at,
            html5_url=f"{WEB_CONSOLE_PATH}?{urlencode(query, quote_via=quote)}",
        )

    def web_console(self, vm_id: str, session_ticket: str) -> VmInfo | None:
        """The VM the simulated web console shows, if `session_ticket` was issued for it and has not
        expired (None otherwise). Unlike vCenter's, the ticket keeps working until it expires, so
        the page can refresh its picture."""
        with self._lock:
            kept = self._console_tickets.get(session_ticket)
            if kept is None or kept[0] != vm_id or kept[1] <= datetime.now(UTC) or vm_id not in self._vms:
                return None
            return self._vms[vm_id].info()

    def screenshot(self, vm_id: str) -> bytes:
        with self._lock:
            vm = self._powered_on(vm_id, "screenshot")
            self._maybe_fail("screenshot")
            return draw(vm.name, "poweredOn", vm.ip)

    def power_state(self, vm_id: str) -> str:
        with self._lock:
            return "poweredOn" if self._vm(vm_id).powered_on else "poweredOff"

    def power(self, vm_id: str, action: str) -> None:
        if action not in POWER_ACTIONS:
            raise ValueError(f"power action must be one of {', '.join(POWER_ACTIONS)}, not {action!r}")
        if action == "on":
            self.power_on(vm_id)
        elif action == "off":
            self.power_off(vm_id)
        else:
            with self._lock:
                self._powered_on(vm_id, "reset")
                self._maybe_fail("reset")

    def _switch(self, switch: str) -> dict[str, dict[str, Any]]:
        groups = self._portgroups.get(switch)
        if groups is None:
            raise VCenterObjectNotFoundError(f"distributed switch '{switch}' not found")
        return groups

    def ensure_portgroup(self, switch: str, name: str, vlan: int) -> bool:
        with self._lock:
            groups = self._switch(switch)
            if name in groups:
                return False
            self._maybe_fail("ensure_portgroup")
            self._counter += 1
            groups[name] = {"key": f"dvportgroup-sim-{self._counter}", "vlan": vlan}
            self._save()
            return True

    def remove_portgroup(self, switch: str, name: str) -> bool:
        with self._lock:
            groups = self._switch(switch)
            if name not in groups:
                return False
            self._maybe_fail("remove_portgroup")
            users = [vm.name for vm in self._vms.values() if any(n.get("network") == name for n in vm.nics)]
            if users:  # as vCenter does (vcsim does not)
                raise VCenterFaultError(f"vCenter fault during remove port group: ResourceInUse: {', '.join(users)}")
            del groups[name]
            self._save()
            return True

    def list_portgroups(self, switch: str) -> list[PortgroupInfo]:
        with self._lock:
            return sorted(
                (PortgroupInfo(name=n, key=g["key"], vlan=int(g["vlan"])) for n, g in self._switch(switch).items()),
                key=lambda p: p.name,
            )

    def has_switch(self, name: str) -> bool:
        with self._lock:
            return name in self._portgroups

    def has_network(self, datacenter: str, name: str) -> bool:
        with self._lock:
            if datacenter not in self._clusters:
                return False
            return name in STANDARD_NETWORKS or any(name in groups for groups in self._portgroups.values())

    def vm_nics(self, vm_id: str) -> list[NicInfo]:
        with self._lock:
            return [
                NicInfo(network=n["network"], portgroup_key=n.get("portgroup_key"), mac=n.get("mac"))
                for n in self._vm(vm_id).nics
            ]

    def set_extra_config(self, vm_id: str, values: dict[str, str]) -> None:
        with self._lock:
            vm = self._vm(vm_id)
            self._maybe_fail("set_extra_config")
            vm.extra_config.update(values)
            self._save()

    def extra_config(self, vm_id: str) -> dict[str, str]:
        """Test hook: what set_extra_config left on the VM."""
        with self._lock:
            return dict(self._vm(vm_id).extra_config)

    def create_snapshot(self, vm_id: str, name: str) -> bool:
        with self._lock:
            vm = self._vm(vm_id)
            if name in vm.snapshots:
                return False
            self._maybe_fail("create_snapshot")
            vm.snapshots.append(name)
            self._save()
            return True

    def revert_snapshot(self, vm_id: str, name: str) -> None:
        with self._lock:
            vm = self._vm(vm_id)
            if name not in vm.snapshots:
                raise VCenterObjectNotFoundError(f"VM {vm.name} has no snapshot '{name}'")
            self._maybe_fail("revert_snapshot")
            vm.powered_on = False  # a snapshot without memory reverts to a powered-off VM
            self._save()

    def list_snapshots(self, vm_id: str) -> list[str]:
        with self._lock:
            return list(self._vm(vm_id).snapshots)

    def remove_snapshot(self, vm_id: str, name: str) -> bool:
        with self._lock:
            vm = self._vms.get(vm_id)
            if vm is None or name not in vm.snapshots:
                return False
            self._maybe_fail("remove_snapshot")
            vm.snapshots.remove(name)
            self._save()
            return True

    def all_vms(self) -> list[VmInfo]:
        with self._lock:
            return [vm.info() for vm in self._vms.values()]

    def close(self) -> None:
        with self._lock:
            self._save()
            if self._state is not None:
                self._state.close()

    # -- upgrade in place and start order ----------------------------------------------------------
    def wait_for_tools(self, vm_id: str, timeout_seconds: float) -> bool:
        # No guest runs here: the simulated Tools heartbeat is up exactly while the VM is on.
        with self._lock:
            self._maybe_fail("wait_for_tools")
            return self._vm(vm_id).powered_on

    def reconfigure(self, vm_id: str, cpus: int, memory_mib: int, disks_gib: tuple[int, ...]) -> None:
        with self._lock:
            vm = self._vm(vm_id)
            self._maybe_fail("reconfigure")
            if self._needs_power_off(vm, cpus, memory_mib):
                raise VCenterFaultError(
                    f"vCenter fault during reconfigure: InvalidPowerState: CPU/memory hot-add is off on {vm.name}"
                )
            current = list(vm.disks_gib if vm.disks_gib is not None else self.template_disks(vm.template))
            for index, size in enumerate(disks_gib):
                if index < len(current) and size < current[index]:
                    raise VCenterFaultError(
                        f"vCenter fault during reconfigure: disk {index} of {vm.name} cannot shrink "
                        f"from {current[index]} GiB to {size} GiB"
                    )
                if index < len(current):
                    current[index] = size
                else:
                    current.append(size)
            vm.cpus, vm.memory_mib, vm.disks_gib = cpus, memory_mib, current
            self._save()

    def needs_power_off(self, vm_id: str, cpus: int, memory_mib: int) -> bool:
        with self._lock:
            return self._needs_power_off(self._vm(vm_id), cpus, memory_mib)

    @staticmethod
    def _needs_power_off(vm: _Vm, cpus: int, memory_mib: int) -> bool:
        if not vm.powered_on or (cpus, memory_mib) == (vm.cpus, vm.memory_mib):
            return False
        return not (vm.hot_add and cpus >= vm.cpus and memory_mib >= vm.memory_mib)

    def enable_hot_add(self, vm_id: str) -> None:
        """What an administrator does in vCenter (cpuHotAddEnabled, memoryHotAddEnabled)."""
        with self._lock:
            self._vm(vm_id).hot_add = True
            self._save()

    def template_disks(self, template: str) -> tuple[int, ...]:
        found = self._templates.get(template)
        return found.disks_gib if found is not None else ()

    def hardware(self, vm_id: str) -> tuple[int, int, tuple[int, ...]]:
        """(cpus, memory_mib, disk sizes) of a VM, for tests to compare with vCenter's."""
        with self._lock:
            vm = self._vm(vm_id)
            disks = vm.disks_gib if vm.disks_gib is not None else self.template_disks(vm.template)
            return vm.cpus, vm.memory_mib, tuple(disks)

    def sample_usage(self) -> UsageSample:
        with self._lock:
            return simulated_usage.sample(
                list(self._vms.values()),
                lambda vm: vm.disks_gib if vm.disks_gib is not None else self.template_disks(vm.template),
            )

    # -- drift detection ----------------------------------------------------------------------------
    def managed_vms(self) -> list[VmObservation]:
        with self._lock:
            self._maybe_fail("managed_vms")
            return simulated_drift.observe(list(self._vms.values()), self.template_disks)
