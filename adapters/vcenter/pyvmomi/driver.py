"""PyVmomiDriver: the VCenterDriver port over the vSphere API (tested against vcsim).

VMs are tagged with two custom attributes (stagekeeper.deployment, stagekeeper.machine) and
named deterministically, so a retried step finds what an interrupted one created.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from uuid import UUID

from pyVmomi import vim

from adapters.vcenter.pyvmomi import capture, drift, inventory, networks, snapshots, specs, usage
from adapters.vcenter.pyvmomi.console import Consoles, check_action
from adapters.vcenter.pyvmomi.datastore import DatastoreAccess
from adapters.vcenter.pyvmomi.placement import Placement
from adapters.vcenter.pyvmomi.session import ConnectionSettings, Session
from domain.descriptions import VmDescription, VmSelector
from domain.errors import VCenterFaultError, VCenterObjectNotFoundError
from domain.media_ports import DatastoreFile
from domain.metrics import UsageSample
from domain.observations import VmObservation
from domain.ports import (
    CloneSpec,
    ClusterCapacity,
    ConsoleTicket,
    DrsRecommendation,
    GuestIdentity,
    NicInfo,
    NicSetting,
    PoolStatus,
    PoolUsage,
    PortgroupInfo,
    TemplateInfo,
    VmInfo,
    VmLocation,
)

CLONED_PROPERTIES = ["runtime.host", "datastore", "config.hardware.device"]  # read once after a clone
# The VM as a power-on left it, when set_nics just gave every NIC its MAC: the devices (a third of
# the read's CPU) are not read again for them.
POWERED_PROPERTIES = [p for p in inventory.VM_PROPERTIES if p != "config.hardware.device"]
DEPLOYMENT_FIELD = "stagekeeper.deployment"
MACHINE_FIELD = "stagekeeper.machine"
POWERED_ON = "poweredOn"  # vim.VirtualMachinePowerState.poweredOn
TOOLS_RUNNING = "guestToolsRunning"  # vim.vm.GuestInfo.ToolsRunningStatus


class PyVmomiDriver:
    name = "pyvmomi"

    def __init__(self, settings: ConnectionSettings, default_network: str = "VM Network") -> None:
        self.session = Session(settings)
        self.consoles = Consoles(self.session)
        self._side = ThreadPoolExecutor(16, thread_name_prefix="sk-vcenter-side")  # calls beside a task
        self.placement = Placement(self.session, self._side)
        self.datastores = DatastoreAccess(self.session)
        self.default_network = default_network
        self._fields: dict[str, int] = {}
        self._fields_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._portgroup_locks: dict[str, threading.Lock] = {}
        # Inventory that rarely changes, cached; a miss (or a vanished object) refreshes it.
        self._paths: dict[str, str] = {}
        self._templates: dict[str, Any] = {}
        self._template_guest: dict[str, str] = {}
        self._networks: dict[tuple[str, str], Any] = {}
        self._pools: dict[str, Any] = {}
        self._cache_lock = threading.RLock()
        self._datacenters: dict[str, Any] = {}
        self._vm_folders: dict[str, Any] = {}  # datacenter moid -> its VM folder
        self._network_names: dict[str, str] = {}  # network moid -> the name it was found by
        self._switches: dict[str, Any] = {}
        # Facts learned when cloning, saving round trips in the steps that follow.
        self._guest_of: dict[str, str] = {}
        self._datacenter_of: dict[str, Any] = {}
        self._nic_count: dict[str, int] = {}  # set_nics leaves exactly that many NICs: customize needs the count
        # Read once right after a clone, while vCenter resizes it, for the steps that follow it:
        # where it landed (taken by the first vm_location) and its devices (taken by the first
        # set_nics). Anything that may change them drops them first (relocate, ISO, reconfigure).
        self._landed: dict[str, dict[str, Any]] = {}
        self._cloned_devices: dict[str, list[Any]] = {}
        # The MACs set_nics just gave every NIC of a VM (in device order), taken by its power-on.
        self._macs_set: dict[str, tuple[str, ...]] = {}

    # -- helpers -------------------------------------------------------------------------------
    @property
    def _content(self) -> Any:
        return self.session.content

    def _field_keys(self) -> dict[str, int]:
        with self._fields_lock:
            if len(self._fields) < 2:
                manager = self._content.customFieldsManager
                fields = self.session.call("read custom attributes", lambda: list(manager.field or []))
                existing = {f.name: f.key for f in fields}
                for name in (DEPLOYMENT_FIELD, MACHINE_FIELD):
                    if name not in existing:
                        definition = partial(manager.AddCustomFieldDef, name=name, moType=vim.VirtualMachine)
                        existing[name] = self.session.call("define custom attribute", definition).key
                self._fields = {n: existing[n] for n in (DEPLOYMENT_FIELD, MACHINE_FIELD)}
            return self._fields

    def _vm(self, vm_id: str) -> Any:
        return vim.VirtualMachine(vm_id, self.session.connect()._stub)

    def _vms(self) -> list[tuple[Any, dict[str, Any]]]:
        return self.session.call(
            "list VMs", lambda: inventory.retrieve(self._content, vim.VirtualMachine, inventory.VM_PROPERTIES)
        )

    def _info(
        self, vm: Any, props: dict[str, Any], paths: dict[str, str], macs: tuple[str, ...] | None = None
    ) -> VmInfo:
        """`macs`: the NICs' MACs when known without the devices (not read then)."""
        keys = self._field_keys()
        tags = {v.key: v.value for v in props.get("customValue") or []}
        deployment = tags.get(keys[DEPLOYMENT_FIELD])
        pool = props.get("resourcePool")
        return VmInfo(
            vm_id=vm._moId,
            name=props.get("name", ""),
            resource_pool=paths.get(pool._moId, "") if pool is not None else "",
            powered_on=props.get("runtime.powerState") == POWERED_ON,
            deployment_id=UUID(deployment) if deployment else None,
            machine=tags.get(keys[MACHINE_FIELD]) or None,
            ip=props.get("guest.ipAddress") or None,
            hostname=props.get("guest.hostName") or None,
            macs=macs
            if macs is not None
            else tuple(
                str(d.macAddress)
                for d in props.get("config.hardware.device") or []
                if isinstance(d, vim.vm.device.VirtualEthernetCard) and d.macAddress
            ),
            cpus=int(props.get("config.hardware.numCPU") or 0),
            memory_mib=int(props.get("config.hardware.memoryMB") or 0),
        )

    def _pool_paths(self, *needed: Any) -> dict[str, str]:
        def missing() -> bool:
            return not self._paths or any(p is not None and p._moId not in self._paths for p in needed)

        if missing():
            with self._cache_lock:  # parallel reads after a deploy's clones would all walk the pools at once
                if missing():
                    self._paths = inventory.pool_paths(self._content)
        return self._paths

    def _read(self, vm_id: str) -> VmInfo:
        vm = self._vm(vm_id)

        def load() -> VmInfo:
            props = inventory.properties_of(self._content, vm, inventory.VM_PROPERTIES)
            return self._info(vm, props, self._pool_paths(props.get("resourcePool")))

        return self.session.call(f"read VM {vm_id}", load)

    def _template(self, name: str) -> Any:
        with self._cache_lock:  # parallel clones would otherwise all list the inventory at once
            return self._template_locked(name)

    def _template_locked(self, name: str) -> Any:
        template = self._templates.get(name)
        if template is None:
            found = [(vm, props) for vm, props in self._vms() if props.get("config.template") and "name" in props]
            self._templates = {props["name"]: vm for vm, props in found}
            self._template_guest = {props["name"]: str(props.get("config.guestId") or "") for _, props in found}
            template = self._templates.get(name)
        if template is None:
            raise VCenterObjectNotFoundError(f"template '{name}' not found in vCenter")
        return template

    def _resolve_pool(self, path: str) -> tuple[PoolStatus, Any, list[str]]:
        """(status, deepest existing pool, names still missing below it)."""
        parts = path.strip("/").split("/")
        content = self._content
        dc = inventory.datacenter(content, parts[0])
        if dc is None:
            return PoolStatus.UNKNOWN_DATACENTER, None, []
        self._datacenters[parts[0]] = dc  # a clone into the pool needs it next
        compute = inventory.compute_resource(dc, parts[2]) if len(parts) > 2 else None
        if compute is None:
            return PoolStatus.UNKNOWN_CLUSTER, None, []
        pool = compute.resourcePool
        names = parts[4:]
        for i, name in enumerate(names):
            child = inventory.child_pool(pool, name)
            if child is None:
                return PoolStatus.CREATABLE, pool, names[i:]
            pool = child
        return PoolStatus.EXISTS, pool, []

    def _pool(self, path: str) -> Any:
        with self._cache_lock:
            pool = self._pools.get(path)
            if pool is not None:
                return pool
            status, pool, _ = self.session.call(f"find pool {path}", lambda: self._resolve_pool(path))
            if status is not PoolStatus.EXISTS:
                raise VCenterObjectNotFoundError(f"resource pool '{path}' not found in vCenter")
            self._pools[path] = pool
            self._paths = {**self._paths, pool._moId: path}  # a VM read later finds its pool's path
            return pool

    def _forget(self) -> None:
        """Drop cached inventory after vCenter said an object is gone."""
        self._pools.clear()
        self._datacenters.clear()
        self._vm_folders.clear()
        self._templates.clear()
        self._networks.clear()
        self.placement.forget()
        self._switches.clear()
        self._paths = {}

    # -- port ----------------------------------------------------------------------------------
    def list_templates(self) -> list[TemplateInfo]:
        return self.session.call("list templates", self._list_templates)

    def _list_templates(self) -> list[TemplateInfo]:
        found = []
        listed = [(vm, props) for vm, props in self._vms() if props.get("config.template") and "name" in props]
        with self._cache_lock:  # the same listing refreshes the templates clones are made from
            self._templates = {props["name"]: vm for vm, props in listed}
            self._template_guest = {props["name"]: str(props.get("config.guestId") or "") for _, props in listed}
        for vm, props in listed:
            guest = str(props.get("config.guestId") or "otherGuest")
            disks = tuple(
                int(d.capacityInKB // (1024 * 1024))
                for d in vm.config.hardware.device
                if isinstance(d, vim.vm.device.VirtualDisk)
            )
            nics = sum(isinstance(d, vim.vm.device.VirtualEthernetCard) for d in vm.config.hardware.device)
            datacenter = _datacenter_of(vm)
            found.append(
                TemplateInfo(
                    name=props["name"],
                    guest_id=guest,
                    os_family="windows" if guest.lower().startswith("win") else "linux",
                    cpus=int(props.get("config.hardware.numCPU") or 1),
                    memory_mib=int(props.get("config.hardware.memoryMB") or 0),
                    disks_gib=disks,
                    nics=nics,
                    path=f"/{datacenter}/vm/{props['name']}",
                )
            )
        return sorted(found, key=lambda t: t.name)

    def inspect_pool(self, path: str) -> PoolStatus:
        return self.session.call(f"inspect pool {path}", lambda: self._resolve_pool(path)[0])

    def _pool_at(self, path: str) -> Any | None:
        """The pool at `path` found by its inventory path in one call (None: not found that way),
        once its datacenter is known (the walk of _resolve_pool found it and its VM folder): a
        deploy makes sure of its stage's pool before the first clone, and the walk is a round trip
        per level and sibling. Only plain names (an inventory path escapes '%' and '\\'); a pool
        not found so (missing, or a cluster inside a host folder's subfolder) is walked to."""
        parts = path.strip("/").split("/")
        if parts[0] not in self._datacenters or len(parts) < 4 or any(c in path for c in "%\\"):
            return None
        index = self._content.searchIndex
        found = self.session.call(f"find pool {path}", lambda: index.FindByInventoryPath("/".join(parts)))
        return found if isinstance(found, vim.ResourcePool) else None

    def ensure_pool(self, path: str) -> bool:
        with self._pool_lock:
            found = self._pool_at(path)
            if found is not None:
                status, pool, missing = PoolStatus.EXISTS, found, list[str]()
            else:
                status, pool, missing = self.session.call(f"find pool {path}", lambda: self._resolve_pool(path))
            if status in (PoolStatus.UNKNOWN_DATACENTER, PoolStatus.UNKNOWN_CLUSTER):
                missing_part = status.value.replace("_", " ")
                raise VCenterObjectNotFoundError(f"cannot create resource pool {path}: {missing_part}")
            for name in missing:
                pool = self.session.call(
                    f"create pool {name}", partial(pool.CreateResourcePool, name, specs.pool_spec())
                )
            with self._cache_lock:
                # Found (or made) just now: a deploy's clones into it need not walk to it again,
                # nor find the folder they go in (the deploy asks for its pool before its clones).
                self._pools[path] = pool
                self._paths = {**self._paths, pool._moId: path}
                dc = self._datacenters.get(path.strip("/").split("/")[0])
                if dc is not None and dc._moId not in self._vm_folders:
                    self._vm_folders[dc._moId] = self.session.call("find VM folder", lambda: dc.vmFolder)
            return bool(missing)

    def clone(self, spec: CloneSpec) -> VmInfo:
        content = self._content
        dc_name = spec.resource_pool.strip("/").split("/")[0]
        with self._cache_lock:
            dc = self._datacenters.get(dc_name)
            if dc is None:
                dc = self.session.call("find datacenter", lambda: inventory.datacenter(content, dc_name))
                if dc is None:
                    raise VCenterObjectNotFoundError(f"datacenter '{dc_name}' not found in vCenter")
                self._datacenters[dc_name] = dc
            folder = self._vm_folders.get(dc._moId)
            if folder is None:
                folder = self._vm_folders[dc._moId] = self.session.call("find VM folder", lambda: dc.vmFolder)
        # A fresh clone skips the lookup by name: none of the deployment's VMs can exist yet.
        existing = None if spec.fresh else self._find(folder, spec.deployment_id, spec.machine, spec.vm_name)
        if existing is not None:
            return existing
        template = self._vm(spec.source_vm_id) if spec.source_vm_id else self._template(spec.template)
        sizing: tuple[int, int] | None = None
        if spec.source_vm_id:
            read = ["config.hardware.numCPU", "config.hardware.memoryMB"]
            props = self.session.call("read size", lambda: inventory.properties_of(content, template, read))
            sizing = (int(props.get(read[0]) or 0), int(props.get(read[1]) or 0))
        pool = self._pool(spec.resource_pool)
        relocate = vim.vm.RelocateSpec(pool=pool)
        if spec.datastore is not None:
            relocate.datastore = self.placement.datastore(spec.datastore)
        if spec.host is not None:
            # Cloned straight onto the host placement chose (no move after it on a real vCenter).
            relocate.host = self.placement.host(spec.host)
        clone = vim.vm.CloneSpec(location=relocate, powerOn=False, template=False)
        if spec.linked and spec.source_vm_id and spec.source_snapshot:
            info = self.session.call("read snapshots", lambda: _get(template, "snapshot"))
            snapshot = snapshots.named(info, spec.source_snapshot)
            if snapshot is None:
                raise VCenterObjectNotFoundError(f"VM {spec.source_vm_id} has no snapshot '{spec.source_snapshot}'")
            relocate.diskMoveType = "createNewChildDiskBacking"
            clone.snapshot = snapshot
        elif spec.linked and not spec.source_vm_id:
            snapshot = self.session.call("read template snapshot", lambda: _get(template, "snapshot.currentSnapshot"))
            if snapshot is None:
                raise VCenterFaultError(
                    f"template '{spec.template}' has no snapshot: linked clones need one (or use clone_mode full)"
                )
            relocate.diskMoveType = "createNewChildDiskBacking"
            clone.snapshot = snapshot
        try:
            task = self.session.call(
                "clone", lambda: template.CloneVM_Task(folder=folder, name=spec.vm_name, spec=clone)
            )
            vm = self.session.wait(task, f"clone of {spec.vm_name}")
        except VCenterObjectNotFoundError:
            self._forget()  # a cached pool or template may be what vanished
            raise
        # Tagged while vCenter resizes it (calls that need not wait for each other); both are done
        # before the clone is reported, as before.
        tagging = self._side.submit(self._tag, vm, spec.deployment_id, spec.machine)
        try:
            if sizing is None or sizing != (spec.cpus, spec.memory_mib):
                # vCenter ignores sizing inside some clone specs (vcsim ignores it always): reconfigure.
                # A copy of a VM already sized so needs none. Where the clone landed and its devices
                # come with the look that finds the resize done.
                config = vim.vm.ConfigSpec(numCPUs=spec.cpus, memoryMB=spec.memory_mib)
                task = self.session.call("resize", lambda: vm.ReconfigVM_Task(spec=config))
                _, landed = self.session.wait_reading(task, f"resize of {spec.vm_name}", vm, CLONED_PROPERTIES)
            else:
                landed = self.session.call(
                    f"read new VM {vm._moId}", lambda: inventory.properties_of(content, vm, CLONED_PROPERTIES)
                )
        finally:
            tagging.result()
        self._landed[vm._moId] = landed
        self._cloned_devices[vm._moId] = list(landed.get("config.hardware.device") or [])
        guest = self._template_guest.get(spec.template)
        if guest is not None:
            self._guest_of[vm._moId] = guest
        self._datacenter_of[vm._moId] = dc
        return VmInfo(
            vm_id=vm._moId, name=spec.vm_name, resource_pool=spec.resource_pool, powered_on=False,
            deployment_id=spec.deployment_id, machine=spec.machine, cpus=spec.cpus, memory_mib=spec.memory_mib,
        )  # fmt: skip

    def _drop_cloned(self, vm_id: str) -> None:
        self._landed.pop(vm_id, None)
        self._cloned_devices.pop(vm_id, None)
        self._macs_set.pop(vm_id, None)

    def _tag(self, vm: Any, deployment_id: UUID, machine: str) -> None:
        keys = self._field_keys()
        manager = self._content.customFieldsManager
        for key, value in ((keys[DEPLOYMENT_FIELD], str(deployment_id)), (keys[MACHINE_FIELD], machine)):
            self.session.call("tag VM", partial(manager.SetField, entity=vm, key=key, value=value))

    def _find(self, folder: Any, deployment_id: UUID, machine: str, vm_name: str) -> VmInfo | None:
        """The VM an earlier attempt made for this machine (names are deterministic), if any."""
        index = self._content.searchIndex
        vm = self.session.call("find VM by name", lambda: index.FindChild(folder, vm_name))
        if vm is None:
            return None
        info = self._read(vm._moId)
        if info.deployment_id is None:
            # Cloned by an attempt that died before tagging it: adopt it.
            self._tag(vm, deployment_id, machine)
            return self._read(vm._moId)
        if info.deployment_id != deployment_id or info.machine != machine:
            raise VCenterFaultError(f"a VM named {vm_name} already exists for another deployment")
        return info

    def customize(self, vm_id: str, identity: GuestIdentity) -> None:
        vm = self._vm(vm_id)
        guest = self._guest_of.get(vm_id) or str(self.session.call("read guest id", lambda: vm.config.guestId) or "")
        family = "windows" if guest.lower().startswith("win") else "linux"
        if family != identity.os_family:
            # vCenter refuses such a spec (CustomizationFault); vcsim does not check, so we do.
            raise VCenterFaultError(
                f"vCenter fault during customisation: {identity.os_family} customisation on a {family} guest ({guest})"
            )
        nics = self._nic_count.pop(vm_id, None)
        if nics is None:
            devices = self.session.call(
                "read NICs", lambda: inventory.properties_of(self._content, vm, ["config.hardware.device"])
            ).get("config.hardware.device")
            nics = sum(isinstance(d, vim.vm.device.VirtualEthernetCard) for d in devices or [])
        spec = specs.customization(identity, nics)
        task = self.session.call("customize", lambda: vm.CustomizeVM_Task(spec=spec))
        self.session.wait(task, f"customisation of {vm_id}")

    def set_nics(self, vm_id: str, nics: list[NicSetting]) -> None:
        vm = self._vm(vm_id)
        content = self._content

        cloned = self._cloned_devices.pop(vm_id, None)  # as the clone left them, read beside its resize
        self._macs_set.pop(vm_id, None)

        def plan() -> list[Any]:
            if cloned is not None:
                devices = cloned
            else:
                devices = (
                    inventory.properties_of(content, vm, ["config.hardware.device"]).get("config.hardware.device") or []
                )
            cards = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
            changes = []
            for i, nic in enumerate(nics):
                target = self._network(vm, nic.network)
                if target is None and nic.exact:
                    raise VCenterObjectNotFoundError(f"network '{nic.network}' not found")
                target = target or self._network(vm, self.default_network)
                if target is None:
                    raise VCenterObjectNotFoundError(
                        f"network '{nic.network}' (and default '{self.default_network}') not found"
                    )
                card = cards[i] if i < len(cards) else vim.vm.device.VirtualVmxnet3(key=-(i + 1))
                card.backing = specs.backing(target, self._network_names.get(target._moId))
                card.connectable = vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True)
                if nic.mac:
                    card.addressType = "manual"
                    card.macAddress = nic.mac
                operation = "edit" if i < len(cards) else "add"
                changes.append(vim.vm.device.VirtualDeviceSpec(operation=operation, device=card))
            for card in cards[len(nics) :]:
                changes.append(vim.vm.device.VirtualDeviceSpec(operation="remove", device=card))
            return changes

        changes = self.session.call("plan NICs", plan)
        if changes:
            task = self.session.call(
                "set NICs", lambda: vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes))
            )
            self.session.wait(task, f"NIC change of {vm_id}")
        self._nic_count[vm_id] = len(nics)
        if nics and all(nic.mac for nic in nics):
            # Exactly these NICs, in this order (edited in place, then added), each with its MAC.
            self._macs_set[vm_id] = tuple(str(nic.mac) for nic in nics)

    def _network(self, vm: Any, name: str) -> Any | None:
        dc = self._datacenter_of.get(vm._moId) or inventory.datacenter_of(vm)
        key = (dc._moId, name)
        if key not in self._networks:
            with self._cache_lock:  # parallel NIC changes would all list the networks at once
                if key not in self._networks:
                    found = networks.network_named(self._content, dc, name)
                    if found is None:
                        return None  # not cached: a port group created later must be found
                    self._network_names[found._moId] = name
                    self._networks[key] = found
        return self._networks[key]

    def power_on(self, vm_id: str) -> VmInfo:
        vm = self._vm(vm_id)
        self._nic_count.pop(vm_id, None)  # a machine that is not customised (a fenced copy) leaves it
        macs = self._macs_set.pop(vm_id, None)
        self._drop_cloned(vm_id)
        try:
            task = self.session.call("power on", vm.PowerOnVM_Task)
            # The VM as the power-on left it comes with the look that finds the task done.
            read = POWERED_PROPERTIES if macs is not None else inventory.VM_PROPERTIES
            _, props = self.session.wait_reading(task, f"power-on of {vm_id}", vm, read)
        except VCenterFaultError as error:
            if "InvalidPowerState" not in str(error):  # already on: nothing to do
                raise
            return self._read(vm_id)
        return self.session.call(
            f"read VM {vm_id}", lambda: self._info(vm, props, self._pool_paths(props.get("resourcePool")), macs)
        )

    def power_off(self, vm_id: str) -> None:
        vm = self._vm(vm_id)
        if self.session.call("read power state", lambda: vm.runtime.powerState) == POWERED_ON:
            self.session.wait(self.session.call("power off", vm.PowerOffVM_Task), f"power-off of {vm_id}")

    def relocate(self, vm_id: str, resource_pool: str) -> None:
        vm = self._vm(vm_id)
        pool = self._pool(resource_pool)
        task = self.session.call("relocate", lambda: vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(pool=pool)))
        self.session.wait(task, f"relocation of {vm_id} to {resource_pool}")

    def destroy(self, vm_id: str) -> None:
        vm = self._vm(vm_id)
        self._drop_cloned(vm_id)
        try:
            task = self.session.call("destroy", vm.Destroy_Task)
            self.session.wait(task, f"destruction of {vm_id}")
        except VCenterObjectNotFoundError:
            return  # already gone

    def find_vms(self, deployment_id: UUID) -> list[VmInfo]:
        paths = self.session.call("list pools", lambda: inventory.pool_paths(self._content))
        self._paths = paths
        prefix = f"sk-{deployment_id.hex[:12]}-"
        found = []
        for vm, props in self._vms():
            info = self._info(vm, props, paths)
            if info.deployment_id == deployment_id or (info.deployment_id is None and info.name.startswith(prefix)):
                found.append(info)
        return sorted(found, key=lambda v: v.name)

    def describe_vms(self, selector: VmSelector) -> list[VmDescription]:
        return capture.describe(self, selector)

    def tag_vm(self, vm_id: str, deployment_id: UUID, machine: str) -> None:
        capture.tag(self, vm_id, deployment_id, machine)

    def untag_vm(self, vm_id: str) -> None:
        capture.untag(self, vm_id)

    def tag_keys(self) -> tuple[int, int]:
        """The custom-attribute keys of (deployment, machine)."""
        keys = self._field_keys()
        return keys[DEPLOYMENT_FIELD], keys[MACHINE_FIELD]

    def vm_ref(self, vm_id: str) -> Any:
        return self._vm(vm_id)

    def pool_usage(self, path: str) -> PoolUsage:
        paths = self.session.call("list pools", lambda: inventory.pool_paths(self._content))
        vms = [self._info(vm, props, paths) for vm, props in self._vms() if not props.get("config.template")]
        here = [vm for vm in vms if vm.resource_pool == path]
        return PoolUsage(
            vms=len(here),
            powered_on=sum(vm.powered_on for vm in here),
            cpus=sum(vm.cpus for vm in here),
            memory_mib=sum(vm.memory_mib for vm in here),
        )

    def sample_usage(self) -> UsageSample:
        deployment_key, machine_key = self.tag_keys()
        found: UsageSample = self.session.call(
            "sample usage", lambda: usage.sample(self._content, deployment_key, machine_key)
        )
        return found

    def console_ticket(self, vm_id: str) -> ConsoleTicket:
        return self.consoles.ticket(vm_id)

    def screenshot(self, vm_id: str) -> bytes:
        return self.consoles.screenshot(vm_id)

    def power_state(self, vm_id: str) -> str:
        return self.consoles.power_state(vm_id)

    def power(self, vm_id: str, action: str) -> None:
        check_action(action)
        if action == "on":
            self.power_on(vm_id)
        elif action == "off":
            self.power_off(vm_id)
        else:
            self.consoles.reset(vm_id)

    # -- fenced networks ---------------------------------------------------------------------
    def _switch(self, name: str) -> Any:
        with self._cache_lock:
            dvs = self._switches.get(name)
        if dvs is None:
            dvs = self.session.call(f"find switch {name}", lambda: networks.switch(self._content, name))
            if dvs is None:
                raise VCenterObjectNotFoundError(f"distributed switch '{name}' not found")
            with self._cache_lock:
                self._switches[name] = dvs
        return dvs

    def ensure_portgroup(self, switch: str, name: str, vlan: int) -> bool:
        dvs = self._switch(switch)
        with self._cache_lock:
            lock = self._portgroup_locks.setdefault(name, threading.Lock())
        with lock:  # find-before-create, one at a time per name: two creates would both add one
            existing = self.session.call("list port groups", lambda: networks.portgroups(self._content, dvs))
            if any(info.name == name for _, info in existing):
                return False
            task = self.session.call(
                "add port group", lambda: dvs.AddDVPortgroup_Task([networks.portgroup_spec(name, vlan)])
            )
            self.session.wait(task, f"creation of port group {name}")
            return True

    def remove_portgroup(self, switch: str, name: str) -> bool:
        dvs = self._switch(switch)
        existing = self.session.call("list port groups", lambda: networks.portgroups(self._content, dvs))
        group = next((g for g, info in existing if info.name == name), None)
        if group is None:
            return False
        try:
            self.session.wait(self.session.call("remove port group", group.Destroy_Task), f"removal of {name}")
        except VCenterObjectNotFoundError:
            return False
        with self._cache_lock:
            self._networks = {k: v for k, v in self._networks.items() if k[1] != name}
        return True

    def list_portgroups(self, switch: str) -> list[PortgroupInfo]:
        dvs = self._switch(switch)
        found = self.session.call("list port groups", lambda: networks.portgroups(self._content, dvs))
        return sorted((info for _, info in found), key=lambda p: p.name)

    def has_switch(self, name: str) -> bool:
        return self.session.call(f"find switch {name}", lambda: networks.switch(self._content, name)) is not None

    def has_network(self, datacenter: str, name: str) -> bool:
        def find() -> bool:
            dc = inventory.datacenter(self._content, datacenter)
            return dc is not None and networks.network_named(self._content, dc, name) is not None

        return bool(self.session.call(f"find network {name}", find))

    def vm_nics(self, vm_id: str) -> list[NicInfo]:
        vm = self._vm(vm_id)

        def read() -> list[NicInfo]:
            devices = inventory.properties_of(self._content, vm, ["config.hardware.device"]).get(
                "config.hardware.device"
            )
            return networks.nics(list(devices or []), networks.portgroup_names(self._content))

        return self.session.call(f"read NICs of {vm_id}", read)

    def set_extra_config(self, vm_id: str, values: dict[str, str]) -> None:
        vm = self._vm(vm_id)
        options = [vim.option.OptionValue(key=k, value=v) for k, v in sorted(values.items())]
        task = self.session.call(
            "set extraConfig", lambda: vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=options))
        )
        self.session.wait(task, f"extraConfig of {vm_id}")

    # -- snapshots -----------------------------------------------------------------------------
    def create_snapshot(self, vm_id: str, name: str) -> bool:
        vm = self._vm(vm_id)
        if snapshots.named(self.session.call("read snapshots", lambda: _get(vm, "snapshot")), name) is not None:
            return False
        task = self.session.call(
            "snapshot",
            lambda: vm.CreateSnapshot_Task(name=name, description="stagekeeper", memory=False, quiesce=False),
        )
        self.session.wait(task, f"snapshot {name} of {vm_id}")
        return True

    def revert_snapshot(self, vm_id: str, name: str) -> None:
        vm = self._vm(vm_id)
        snapshot = snapshots.named(self.session.call("read snapshots", lambda: _get(vm, "snapshot")), name)
        if snapshot is None:
            raise VCenterObjectNotFoundError(f"VM {vm_id} has no snapshot '{name}'")
        self.session.wait(self.session.call("revert", snapshot.RevertToSnapshot_Task), f"revert of {vm_id} to {name}")

    def remove_snapshot(self, vm_id: str, name: str) -> bool:
        vm = self._vm(vm_id)
        try:
            snapshot = snapshots.named(self.session.call("read snapshots", lambda: _get(vm, "snapshot")), name)
            if snapshot is None:
                return False
            task = self.session.call("remove snapshot", lambda: snapshot.RemoveSnapshot_Task(removeChildren=False))
            self.session.wait(task, f"removal of snapshot {name} of {vm_id}")
        except VCenterObjectNotFoundError:
            return False  # the VM (or the snapshot) is gone already
        return True

    def list_snapshots(self, vm_id: str) -> list[str]:
        vm = self._vm(vm_id)
        info = self.session.call("read snapshots", lambda: _get(vm, "snapshot"))
        return [] if info is None else [name for name, _ in snapshots.walk(info.rootSnapshotList)]

    def close(self) -> None:
        self._side.shutdown(wait=True)
        self.session.close()

    # -- upgrade in place and start order ----------------------------------------------------------
    def wait_for_tools(self, vm_id: str, timeout_seconds: float) -> bool:
        vm = self._vm(vm_id)
        deadline = time.monotonic() + timeout_seconds
        pause = 0.2
        while True:
            status = self.session.call("read Tools status", lambda: _get(vm, "guest.toolsRunningStatus"))
            if status == TOOLS_RUNNING:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))
            pause = min(pause * 2, 5.0)

    def needs_power_off(self, vm_id: str, cpus: int, memory_mib: int) -> bool:
        vm = self._vm(vm_id)
        props = self.session.call(
            "read hot-add settings", lambda: inventory.properties_of(self._content, vm, HOT_ADD_PROPERTIES)
        )
        return _needs_power_off(props, cpus, memory_mib)

    def reconfigure(self, vm_id: str, cpus: int, memory_mib: int, disks_gib: tuple[int, ...]) -> None:
        vm = self._vm(vm_id)
        self._drop_cloned(vm_id)
        content = self._content

        def plan() -> Any:
            props = inventory.properties_of(content, vm, ["config.hardware.device", *HOT_ADD_PROPERTIES])
            resize = (cpus, memory_mib) != (props.get("config.hardware.numCPU"), props.get("config.hardware.memoryMB"))
            if _needs_power_off(props, cpus, memory_mib):
                # Without hot-add vCenter refuses this; say so before sending half a change.
                raise VCenterFaultError(f"vCenter fault during reconfigure: InvalidPowerState: {vm_id} is powered on")
            devices = props.get("config.hardware.device") or []
            changes = specs.disk_changes(devices, disks_gib, vm_id)
            if not resize and not changes:
                return None
            config = vim.vm.ConfigSpec(deviceChange=changes)
            if resize:
                config.numCPUs, config.memoryMB = cpus, memory_mib
            return config

        config = self.session.call("plan reconfiguration", plan)
        if config is not None:
            task = self.session.call("reconfigure", lambda: vm.ReconfigVM_Task(spec=config))
            self.session.wait(task, f"reconfiguration of {vm_id}")

    # -- placement (adapters/vcenter/pyvmomi/placement.py) ----------------------------------------
    def placement_inventory(self, datacenter: str) -> list[ClusterCapacity]:
        return self.placement.inventory(datacenter)

    def recommend_placement(
        self, datacenter: str, cluster: str, cpus: int, memory_mib: int
    ) -> DrsRecommendation | None:
        return self.placement.recommend(datacenter, cluster, cpus, memory_mib)

    def relocate_to_host(self, vm_id: str, host: str, datastore: str | None) -> None:
        self._landed.pop(vm_id, None)
        self.placement.relocate(self._vm(vm_id), host, datastore)

    def vm_location(self, vm_id: str) -> VmLocation:
        return self.placement.location(self._vm(vm_id), self._landed.pop(vm_id, None))

    # -- datastore files (the DatastoreFiles port: adapters/vcenter/pyvmomi/datastore.py) --------
    def upload_file(self, datacenter: str, datastore: str, path: str, chunks: Iterable[bytes], size: int) -> None:
        self.datastores.upload_file(datacenter, datastore, path, chunks, size)

    def delete_file(self, datacenter: str, datastore: str, path: str) -> bool:
        return self.datastores.delete_file(datacenter, datastore, path)

    def search_datastore(self, datacenter: str, datastore: str, folder: str, pattern: str) -> list[DatastoreFile]:
        return self.datastores.search_datastore(datacenter, datastore, folder, pattern)

    def attach_iso(self, vm_id: str, datastore_path: str) -> None:
        self._cloned_devices.pop(vm_id, None)
        self._macs_set.pop(vm_id, None)
        self.datastores.attach_iso(self._vm(vm_id), vm_id, datastore_path)

    def vm_isos(self, vm_id: str) -> list[str]:
        return self.datastores.vm_isos(self._vm(vm_id))

    # -- drift detection ----------------------------------------------------------------------------
    def managed_vms(self) -> list[VmObservation]:
        return drift.managed_vms(self)


HOT_ADD_PROPERTIES = [
    "config.hardware.numCPU", "config.hardware.memoryMB", "runtime.powerState",
    "config.cpuHotAddEnabled", "config.memoryHotAddEnabled",
]  # fmt: skip


def _needs_power_off(props: dict[str, Any], cpus: int, memory_mib: int) -> bool:
    """vSphere changes CPU / memory of a running VM only as a growth its hot-add settings allow."""
    now_cpus, now_memory = props.get("config.hardware.numCPU") or 0, props.get("config.hardware.memoryMB") or 0
    if props.get("runtime.powerState") != POWERED_ON or (cpus, memory_mib) == (now_cpus, now_memory):
        return False
    cpu_ok = cpus == now_cpus or (cpus > now_cpus and bool(props.get("config.cpuHotAddEnabled")))
    memory_ok = memory_mib == now_memory or (memory_mib > now_memory and bool(props.get("config.memoryHotAddEnabled")))
    return not (cpu_ok and memory_ok)


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _datacenter_of(entity: Any) -> str:
    return str(inventory.datacenter_of(entity).name)
