"""The port archives need from vCenter: a VM's files and record, datastore files, registration.

Kept apart from VCenterDriver (domain/ports.py) so the two drivers implement it in modules of
their own (adapters/vcenter/pyvmomi/archives.py, adapters/vcenter/simulated_archives.py); both run
the contract suite tests/contract/test_archive_storage.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class DatastoreFile:
    """A file on a datastore: `[datastore] path`."""

    datastore: str
    path: str

    def __str__(self) -> str:
        return f"[{self.datastore}] {self.path}"


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str


class ArchiveStorage(Protocol):
    """Datastore files and VM records. Faults: VCenterFaultError / VCenterObjectNotFoundError."""

    def machine_record(self, vm_id: str) -> dict[str, Any]:
        """The VM's configuration as vCenter holds it: name, cpus, memory_mib, guest_id, power,
        resource_pool, host, datastore, folder (the VM's directory on it), disks [{file (name in the
        folder), capacity_kib}], nics [{network, portgroup_key, mac}], ip, hostname."""
        ...

    def vm_files(self, vm_id: str) -> list[DatastoreFile]:
        """Every file in the VM's directory, sorted by path (the datastore's own browser)."""
        ...

    def make_folder(self, folder: DatastoreFile) -> None:
        """Create a datastore folder (and its parents); an existing folder is no error."""
        ...

    def copy_file(self, source: DatastoreFile, target: DatastoreFile) -> None:
        """Copy one file (CopyDatastoreFile_Task), replacing a target a crash left half-written."""
        ...

    def digest(self, file: DatastoreFile) -> FileDigest:
        """Size and SHA-256 of a datastore file, read through vCenter's file access, streamed."""
        ...

    def delete_folder(self, folder: DatastoreFile) -> None:
        """Delete a datastore file, or a folder and its files; an absent one is no error."""
        ...

    def register_vm(self, vmx: DatastoreFile, name: str, resource_pool: str, record: dict[str, Any]) -> str:
        """Register the .vmx as VM `name` in the pool, then give it the record's CPU, memory, disks
        (backed by the files beside the .vmx) and NICs (networks and MACs); returns the VM id. A VM
        already registered under `name` is returned as it is (a retried step)."""
        ...
