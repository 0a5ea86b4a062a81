"""Archive storage for the simulated vCenter: datastores as in-memory folders of files.

A simulated VM's directory (`[LocalDS_0] <vm name>/`) holds a .vmx, .nvram, a disk descriptor, a
flat disk whose bytes derive from the VM's template (so two clones of one template hold the same
disk, as full clones do) and a log. Copies, digests and registration follow the port's contract
(tests/contract/test_archive_storage.py), the same one the pyvmomi adapter runs against vcsim.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from adapters.vcenter.simulated import SimulatedVCenter
from domain.archive_ports import ByteSource, DatastoreFile, FileDigest
from domain.errors import VCenterFaultError, VCenterObjectNotFoundError
from domain.ports import NicSetting

VM_DATASTORE = "LocalDS_0"
DATASTORES = ("LocalDS_0", "LocalDS_1")
DISK_BYTES = 256 * 1024
T = TypeVar("T")


class SimulatedArchiveStorage:
    def __init__(self, vcenter: SimulatedVCenter, datastores: tuple[str, ...] = DATASTORES) -> None:
        self.vcenter = vcenter
        self.datastores = datastores
        self.files: dict[DatastoreFile, bytes] = {}
        self.folders: set[DatastoreFile] = set()
        self._lock = threading.RLock()

    def _check(self, file: DatastoreFile) -> None:
        if file.datastore not in self.datastores:
            raise VCenterObjectNotFoundError(f"datastore '{file.datastore}' not found in datacenter DC0")

    def _vm_folder(self, vm_id: str) -> DatastoreFile:
        vm = self.vcenter._vm(vm_id)
        folder = DatastoreFile(VM_DATASTORE, vm.name)
        with self._lock:
            if folder not in self.folders:
                # The files a clone gets: its disk's bytes come from its template.
                seed = hashlib.sha256(f"disk of {vm.template or vm.name}".encode()).digest()
                disk = (seed * (DISK_BYTES // len(seed) + 1))[:DISK_BYTES]
                self.folders.add(folder)
                for name, data in (
                    (f"{vm.name}.vmx", f'displayName = "{vm.name}"\nnumvcpus = "{vm.cpus}"\n'.encode()),
                    (f"{vm.name}.nvram", b"\0" * 64),
                    (f"{vm.name}.vmdk", f'RW 512 FLAT "{vm.name}-flat.vmdk" 0\n'.encode()),
                    (f"{vm.name}-flat.vmdk", disk),
                    ("vmware.log", f"powered on {vm.name}\n".encode()),
                ):
                    self.files[DatastoreFile(VM_DATASTORE, f"{vm.name}/{name}")] = data
        return folder

    def machine_record(self, vm_id: str) -> dict[str, Any]:
        vm = self.vcenter._vm(vm_id)
        self._vm_folder(vm_id)
        return {
            "name": vm.name,
            "cpus": vm.cpus,
            "memory_mib": vm.memory_mib,
            "guest_id": vm.guest_id,
            "power": "poweredOn" if vm.powered_on else "poweredOff",
            "host": vm.host or None,
            "resource_pool": vm.resource_pool,
            "datastore": VM_DATASTORE,
            "folder": vm.name,
            "vmx": f"{vm.name}.vmx",
            "disks": [{"file": f"{vm.name}.vmdk", "capacity_kib": DISK_BYTES // 1024}],
            "nics": [
                {"network": n["network"], "portgroup_key": n.get("portgroup_key"), "mac": n.get("mac")} for n in vm.nics
            ],
            "ip": vm.ip,
            "hostname": vm.hostname,
        }

    def vm_files(self, vm_id: str) -> list[DatastoreFile]:
        return self.list_folder(self._vm_folder(vm_id))

    def vm_file_sizes(self, vm_id: str) -> list[tuple[DatastoreFile, int]]:
        with self._lock:
            return [(f, len(self.files.get(f, b""))) for f in self.vm_files(vm_id)]

    def list_folder(self, folder: DatastoreFile) -> list[DatastoreFile]:
        self._check(folder)
        prefix = f"{folder.path}/"
        with self._lock:
            return sorted(
                (f for f in self.files if f.datastore == folder.datastore and f.path.startswith(prefix)),
                key=lambda f: f.path,
            )

    def make_folder(self, folder: DatastoreFile) -> None:
        self._check(folder)
        with self._lock:
            self.folders.add(folder)

    def copy_file(self, source: DatastoreFile, target: DatastoreFile) -> None:
        self._check(source)
        self._check(target)
        self.vcenter._maybe_fail("copy_file")
        with self._lock:
            data = self.files.get(source)
            if data is None:
                raise VCenterObjectNotFoundError(f"vCenter: copy of {source}: FileNotFound: {source}")
            parent = DatastoreFile(target.datastore, target.path.rsplit("/", 1)[0])
            if parent not in self.folders:
                raise VCenterFaultError(f"vCenter fault during copy of {source}: FileNotFound: folder {parent}")
            self.files[target] = data

    def digest(self, file: DatastoreFile) -> FileDigest:
        self._check(file)
        with self._lock:
            data = self.files.get(file)
        if data is None:
            raise VCenterObjectNotFoundError(f"vCenter: read {file}: FileNotFound: {file}")
        return FileDigest(len(data), hashlib.sha256(data).hexdigest())

    def read_file(self, file: DatastoreFile, use: Callable[[ByteSource], T]) -> T:
        self._check(file)
        with self._lock:
            data = self.files.get(file)
        if data is None:
            raise VCenterObjectNotFoundError(f"vCenter: read {file}: FileNotFound: {file}")
        return use(io.BytesIO(data))

    def write_file(self, file: DatastoreFile, source: BinaryIO, size: int) -> None:
        self._check(file)
        self.vcenter._maybe_fail("write_file")
        source.seek(0)
        data = source.read(size)
        with self._lock:
            parent = DatastoreFile(file.datastore, file.path.rsplit("/", 1)[0])
            if parent not in self.folders:
                raise VCenterFaultError(f"vCenter fault during write of {file}: FileNotFound: folder {parent}")
            self.files[file] = data

    def delete_folder(self, folder: DatastoreFile) -> None:
        self._check(folder)
        prefix = f"{folder.path}/"
        with self._lock:
            for file in [
                f for f in self.files if f == folder or (f.datastore == folder.datastore and f.path.startswith(prefix))
            ]:
                del self.files[file]
            self.folders = {
                f
                for f in self.folders
                if not (f.datastore == folder.datastore and (f == folder or f.path.startswith(prefix)))
            }

    def power_on(self, vm_id: str) -> None:
        self.vcenter.power_on(vm_id)

    def power_off(self, vm_id: str) -> None:
        self.vcenter.power_off(vm_id)

    def attach_disks(self, vm_id: str, vmx: DatastoreFile, record: dict[str, Any]) -> None:
        self._check(vmx)
        folder = vmx.path.rsplit("/", 1)[0]
        with self._lock, self.vcenter._lock:
            vm = self.vcenter._vm(vm_id)
            have = {d["file"] for d in vm.disks}
            for disk in record.get("disks", []):
                path = f"[{vmx.datastore}] {folder}/{disk['file']}"
                if path in have:
                    continue
                if DatastoreFile(vmx.datastore, f"{folder}/{disk['file']}") not in self.files:
                    raise VCenterObjectNotFoundError(f"vCenter: attach {path}: FileNotFound: {path}")
                vm.disks.append({"label": f"Hard disk {len(vm.disks) + 1}", "capacity_kib": disk["capacity_kib"],
                                 "provisioning": "thin", "delta_chain": [], "file": path})  # fmt: skip
                have.add(path)
            self.vcenter._save()

    def register_vm(self, vmx: DatastoreFile, name: str, resource_pool: str, record: dict[str, Any]) -> str:
        self._check(vmx)
        with self._lock:
            if vmx not in self.files:
                raise VCenterObjectNotFoundError(f"vCenter: register {vmx}: FileNotFound: {vmx}")
            existing = next((vm for vm in self.vcenter._vms.values() if vm.name == name), None)
            if existing is not None:
                vm_id = existing.vm_id
            else:
                vm_id = self.vcenter.add_existing_vm(
                    name, resource_pool, cpus=int(record["cpus"]), memory_mib=int(record["memory_mib"]),
                    guest_id=record.get("guest_id") or "", powered_on=False, hostname=record.get("hostname"),
                    ip=record.get("ip"),
                    disks=[
                        {"label": f"Hard disk {i + 1}", "capacity_kib": d["capacity_kib"], "provisioning": "thin",
                         "delta_chain": [], "file": f"[{vmx.datastore}] {vmx.path.rsplit('/', 1)[0]}/{d['file']}"}
                        for i, d in enumerate(record.get("disks", []))
                    ],
                )  # fmt: skip
            self.folders.add(DatastoreFile(vmx.datastore, vmx.path.rsplit("/", 1)[0]))
        nics = [
            NicSetting(network=n["network"], mac=n["mac"], exact=n.get("portgroup_key") is not None)
            for n in record.get("nics", [])
        ]
        if nics:
            self.vcenter.set_nics(vm_id, nics)
        return vm_id
