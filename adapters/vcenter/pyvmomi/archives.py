"""Archive storage on vCenter (domain/archive_ports.py): datastore files and VM records.

Files are copied one by one with CopyDatastoreFile_Task (a folder copy is not reliable: vcsim
leaves an empty file), listed with the datastore's own browser (SearchDatastore_Task) and read
through vCenter's HTTP file access (/folder/<path>?dcPath=&dsName=) in chunks, hashed as they
arrive, never held whole in memory. RegisterVM_Task is followed by a reconfiguration from the
archive record: vcsim (and a .vmx from another vCenter) may not bring the devices back.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from pyVmomi import vim

from adapters.vcenter.pyvmomi import inventory, networks
from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from domain.archive_ports import ByteSource, DatastoreFile, FileDigest
from domain.errors import VCenterFaultError, VCenterObjectNotFoundError
from domain.ports import NicSetting

CHUNK = 1 << 20
T = TypeVar("T")
_PATH = re.compile(r"^\[(?P<ds>[^\]]+)\]\s*(?P<path>.*)$")


def parse_path(text: str) -> DatastoreFile:
    found = _PATH.match(text)
    if found is None:
        raise VCenterFaultError(f"vCenter gave a datastore path without a datastore: {text!r}")
    return DatastoreFile(found["ds"], found["path"])


@dataclass(frozen=True)
class _Place:
    """The datacenter archives use, its name and its datastores by name, read once per connection."""

    content: Any
    datacenter: Any
    name: str
    datastores: dict[str, Any]


class PyVmomiArchiveStorage:
    def __init__(self, driver: PyVmomiDriver) -> None:
        self.driver = driver
        self.session = driver.session
        self._place: _Place | None = None
        # VM id -> its devices as its registration left them, until its disks are attached.
        self._registered: dict[str, list[Any]] = {}

    # -- inventory ---------------------------------------------------------------------------------
    def _located(self, refresh: bool = False) -> _Place:
        """The datacenter (the first one holding VMs: DC0 on vcsim) and its datastores. Every file
        operation starts here, so they are read once per connection (a relogin keeps the stub and
        the references) rather than in a few round trips per file; a datastore not found reads
        them again."""
        content = self.session.content
        place = self._place
        if place is None or place.content is not content or refresh:
            found = [dc for dc in content.rootFolder.childEntity if isinstance(dc, vim.Datacenter)]
            if not found:
                raise VCenterObjectNotFoundError("vCenter has no datacenter")
            dc = found[0]
            place = self._place = _Place(content, dc, str(dc.name), {str(ds.name): ds for ds in dc.datastore})
        return place

    def _datacenter(self) -> Any:
        return self._located().datacenter

    def _datastore(self, name: str) -> Any:
        place = self._located()
        if name not in place.datastores:
            place = self._located(refresh=True)
        if name not in place.datastores:
            raise VCenterObjectNotFoundError(f"datastore '{name}' not found in datacenter {place.name}")
        return place.datastores[name]

    def machine_record(self, vm_id: str) -> dict[str, Any]:
        vm = self.driver._vm(vm_id)
        content = self.session.content
        properties = [
            "name", "config.hardware.device", "config.hardware.numCPU", "config.hardware.memoryMB",
            "config.guestId", "config.files.vmPathName", "runtime.powerState", "runtime.host", "resourcePool",
            "guest.ipAddress", "guest.hostName",
        ]  # fmt: skip

        def read() -> dict[str, Any]:
            props = inventory.properties_of(content, vm, properties)
            vmx = parse_path(str(props["config.files.vmPathName"]))
            folder = vmx.path.rsplit("/", 1)[0] if "/" in vmx.path else ""
            disks = []
            for device in props.get("config.hardware.device") or []:
                if isinstance(device, vim.vm.device.VirtualDisk):
                    backing = parse_path(str(getattr(device.backing, "fileName", "")))
                    disks.append({"file": backing.path.rsplit("/", 1)[-1], "capacity_kib": int(device.capacityInKB)})
            host = props.get("runtime.host")
            pool = props.get("resourcePool")
            devices = list(props.get("config.hardware.device") or [])
            # The NICs from the devices read here; port group names only when a NIC is on one.
            port = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo
            distributed = any(isinstance(getattr(d, "backing", None), port) for d in devices)
            found = networks.nics(devices, networks.portgroup_names(content) if distributed else {})
            return {
                "name": str(props.get("name", "")),
                "cpus": int(props.get("config.hardware.numCPU") or 0),
                "memory_mib": int(props.get("config.hardware.memoryMB") or 0),
                "guest_id": str(props.get("config.guestId") or ""),
                "power": str(props.get("runtime.powerState") or ""),
                "host": str(host.name) if host is not None else None,
                "resource_pool": self.driver._pool_paths(pool).get(pool._moId, "") if pool is not None else "",
                "datastore": vmx.datastore,
                "folder": folder,
                "vmx": vmx.path.rsplit("/", 1)[-1],
                "disks": disks,
                "ip": props.get("guest.ipAddress") or None,
                "hostname": props.get("guest.hostName") or None,
                "nics": [{"network": n.network, "portgroup_key": n.portgroup_key, "mac": n.mac} for n in found],
            }

        return self.session.call(f"read the record of VM {vm_id}", read)

    def vm_files(self, vm_id: str) -> list[DatastoreFile]:
        return [file for file, _ in self.vm_file_sizes(vm_id)]

    def vm_file_sizes(self, vm_id: str) -> list[tuple[DatastoreFile, int]]:
        vm = self.driver._vm(vm_id)
        content = self.session.content
        record = self.session.call(
            f"read files of VM {vm_id}",  # the one property, not the whole config (devices and all)
            lambda: parse_path(str(inventory.properties_of(content, vm, ["config.files.vmPathName"])[
                "config.files.vmPathName"])),
        )  # fmt: skip
        folder = record.path.rsplit("/", 1)[0] if "/" in record.path else ""
        return self._listing(DatastoreFile(record.datastore, folder))

    def list_folder(self, folder: DatastoreFile) -> list[DatastoreFile]:
        return [file for file, _ in self._listing(folder)]

    def _listing(self, folder: DatastoreFile) -> list[tuple[DatastoreFile, int]]:
        datastore = self.session.call("find datastore", lambda: self._datastore(folder.datastore))
        spec = vim.host.DatastoreBrowser.SearchSpec(
            matchPattern=["*"], details=vim.host.DatastoreBrowser.FileInfo.Details(fileSize=True)
        )
        task = self.session.call(
            f"list {folder}", lambda: datastore.browser.SearchDatastore_Task(datastorePath=str(folder), searchSpec=spec)
        )
        result = self.session.wait(task, f"listing of {folder}")
        found = sorted(
            (str(f.path), int(f.fileSize or 0))
            for f in (result.file or [])
            if not isinstance(f, vim.host.DatastoreBrowser.FolderInfo)
        )
        return [
            (DatastoreFile(folder.datastore, f"{folder.path}/{name}" if folder.path else name), size)
            for name, size in found
        ]

    # -- files -------------------------------------------------------------------------------------
    def make_folder(self, folder: DatastoreFile) -> None:
        dc = self._datacenter()
        manager = self.session.content.fileManager
        try:
            self.session.call(
                f"create folder {folder}",
                lambda: manager.MakeDirectory(name=str(folder), datacenter=dc, createParentDirectories=True),
            )
        except VCenterFaultError as fault:
            if "FileAlreadyExists" not in fault.message:
                raise

    def copy_file(self, source: DatastoreFile, target: DatastoreFile) -> None:
        dc = self._datacenter()
        manager = self.session.content.fileManager
        task = self.session.call(
            f"copy {source}",
            lambda: manager.CopyDatastoreFile_Task(
                sourceName=str(source), sourceDatacenter=dc, destinationName=str(target),
                destinationDatacenter=dc, force=True,
            ),
        )  # fmt: skip
        self.session.wait(task, f"copy of {source} to {target}")

    def delete_folder(self, folder: DatastoreFile) -> None:
        dc = self._datacenter()
        manager = self.session.content.fileManager
        try:
            task = self.session.call(
                f"delete {folder}", lambda: manager.DeleteDatastoreFile_Task(name=str(folder), datacenter=dc)
            )
            self.session.wait(task, f"deletion of {folder}")
        except VCenterObjectNotFoundError:
            return
        except VCenterFaultError as fault:
            if "FileNotFound" not in fault.message:
                raise

    def _url(self, file: DatastoreFile) -> tuple[str, ssl.SSLContext | None]:
        settings = self.session.settings
        parts = urlsplit(settings.url)
        query = urlencode({"dcPath": self._located().name, "dsName": file.datastore})
        context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=settings.ca_bundle)
            if not settings.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return f"{parts.scheme}://{parts.netloc}/folder/{quote(file.path)}?{query}", context

    def _http(self, file: DatastoreFile, request: urllib.request.Request, use: Callable[[Any], T]) -> T:
        _, context = self._url(file)
        request.add_header("Cookie", self.session.connect()._stub.cookie)
        try:
            with urllib.request.urlopen(request, timeout=self.session.settings.task_timeout, context=context) as answer:  # noqa: S310
                return use(answer)
        except urllib.error.HTTPError as error:
            if error.code == 401:
                raise vim.fault.NotAuthenticated() from error
            if error.code == 404:
                raise VCenterObjectNotFoundError(f"vCenter: {file}: FileNotFound") from error
            raise vim.fault.FileFault(file=str(file), msg=f"HTTP {error.code} on {file}") from error

    def read_file(self, file: DatastoreFile, use: Callable[[ByteSource], T]) -> T:
        url, _ = self._url(file)
        return self.session.call(
            f"read {file}",
            lambda: self._http(file, urllib.request.Request(url), use),  # noqa: S310
        )

    def write_file(self, file: DatastoreFile, source: BinaryIO, size: int) -> None:
        url, _ = self._url(file)

        def put() -> None:
            source.seek(0)
            request = urllib.request.Request(  # noqa: S310
                url, data=source, method="PUT",
                headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            )  # fmt: skip
            self._http(file, request, lambda answer: answer.read())

        self.session.call(f"write {file}", put)

    def digest(self, file: DatastoreFile) -> FileDigest:
        def hashed(stream: Any) -> FileDigest:
            # Into one buffer, reused: a fresh chunk of CHUNK bytes each read is a new mapping of the
            # allocator's, its pages faulted in again (about 0.5 ms of CPU a 8 MiB file here).
            digest, size, buffer = hashlib.sha256(), 0, memoryview(bytearray(CHUNK))
            while got := stream.readinto(buffer):
                digest.update(buffer[:got])
                size += got
            return FileDigest(size, digest.hexdigest())

        return self.read_file(file, hashed)

    # -- registration ------------------------------------------------------------------------------
    def register_vm(self, vmx: DatastoreFile, name: str, resource_pool: str, record: dict[str, Any]) -> str:
        dc = self._datacenter()
        index = self.session.content.searchIndex
        vm = self.session.call(f"find VM {name}", lambda: index.FindChild(dc.vmFolder, name))
        if vm is None:
            pool = self.driver._pool(resource_pool)
            task = self.session.call(
                f"register {vmx}",
                lambda: dc.vmFolder.RegisterVM_Task(path=str(vmx), name=name, asTemplate=False, pool=pool),
            )
            vm = self.session.wait(task, f"registration of {name}")
        vm_id = str(vm._moId)
        devices = self._devices(vm, vmx, record)
        nics = [
            NicSetting(network=n["network"], mac=n["mac"], exact=n.get("portgroup_key") is not None)
            for n in record.get("nics", [])
        ]
        if nics:
            self.driver._cloned_devices[vm_id] = devices  # the NICs planned on them: no read of its own
            self.driver.set_nics(vm_id, nics)
        # Kept for the disks' attachment (a NIC change touches no controller and no disk): its plan
        # then reads nothing, when the disks' copies end and their checks take the CPU.
        if len(self._registered) >= 1000:
            self._registered.clear()
        self._registered[vm_id] = devices
        return vm_id

    def power_on(self, vm_id: str) -> None:
        vm = self.driver._vm(vm_id)
        try:  # the task alone: the driver's power_on also reads the VM back, which no one here needs
            self.session.wait(self.session.call("power on", vm.PowerOnVM_Task), f"power-on of {vm_id}")
        except VCenterFaultError as error:
            if "InvalidPowerState" not in str(error):  # already on: nothing to do
                raise

    def power_off(self, vm_id: str) -> None:
        vm = self.driver._vm(vm_id)
        try:  # the task alone: the driver's power_off reads the power state first (a round trip)
            self.session.wait(self.session.call("power off", vm.PowerOffVM_Task), f"power-off of {vm_id}")
        except VCenterFaultError as error:
            if "InvalidPowerState" not in str(error):  # already off: nothing to do
                raise

    def attach_disks(self, vm_id: str, vmx: DatastoreFile, record: dict[str, Any]) -> None:
        vm = self.session.call(f"find VM {vm_id}", lambda: self.driver._vm(vm_id))
        self._devices(vm, vmx, record, self._registered.pop(vm_id, None), read_after=False)

    def _devices(
        self,
        vm: Any,
        vmx: DatastoreFile,
        record: dict[str, Any],
        known: list[Any] | None = None,
        read_after: bool = True,
    ) -> list[Any]:
        """CPU, memory and the disks (on the restored files) the record names and the VM lacks,
        planned on `known` devices (None: read); returns the devices as the change left them, read
        in the look that finds its task done (`read_after`; otherwise nothing is read, [])."""
        folder = vmx.path.rsplit("/", 1)[0]

        def plan() -> Any:
            if known is not None:
                devices = known
            else:
                props = inventory.properties_of(self.session.content, vm, ["config.hardware.device"])
                devices = props.get("config.hardware.device") or []
            have = {
                str(getattr(d.backing, "fileName", "")) for d in devices if isinstance(d, vim.vm.device.VirtualDisk)
            }
            controllers = [d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController)]
            changes: list[Any] = []
            if controllers:
                controller_key = controllers[0].key
            else:
                controller_key = -100
                controller = vim.vm.device.ParaVirtualSCSIController(
                    key=controller_key, busNumber=0, sharedBus="noSharing"
                )
                changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=controller))
            for unit, disk in enumerate(record.get("disks", [])):
                path = f"[{vmx.datastore}] {folder}/{disk['file']}"
                if path in have:
                    continue
                backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=path, diskMode="persistent")
                device = vim.vm.device.VirtualDisk(
                    key=-(200 + unit), controllerKey=controller_key, unitNumber=unit,
                    capacityInKB=int(disk["capacity_kib"]), backing=backing,
                )  # fmt: skip
                changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=device))
            return vim.vm.ConfigSpec(
                numCPUs=int(record["cpus"]), memoryMB=int(record["memory_mib"]), deviceChange=changes
            )

        config = self.session.call("plan the restored devices", plan)
        task = self.session.call("restore devices", lambda: vm.ReconfigVM_Task(spec=config))
        if not read_after:
            self.session.wait(task, f"device restore of {vm._moId}")
            return []
        _, left = self.session.wait_reading(task, f"device restore of {vm._moId}", vm, ["config.hardware.device"])
        return list(left.get("config.hardware.device") or [])
