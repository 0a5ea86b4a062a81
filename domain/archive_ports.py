"""The port archives need from vCenter: a VM's files and record, datastore files, registration.

Kept apart from VCenterDriver (domain/ports.py) so the two drivers implement it in modules of
their own (adapters/vcenter/pyvmomi/archives.py, adapters/vcenter/simulated_archives.py); both run
the contract suite tests/contract/test_archive_storage.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, TypeVar

T = TypeVar("T")


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


class ByteSource(Protocol):
    def read(self, size: int = -1, /) -> bytes | None: ...


class ByteSink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class ArchiveFileCorruptedError(Exception):
    """A file read back from a tier is not what was stored; the message names the file."""


class StreamingFiles(Protocol):
    """Datastore files read and written as streams (what moves to and from a file tier need)."""

    def read_file(self, file: DatastoreFile, use: Callable[[ByteSource], T]) -> T:
        """Open the datastore file as a stream (vCenter's HTTP file access) and call `use` with it."""
        ...

    def write_file(self, file: DatastoreFile, source: BinaryIO, size: int) -> None:
        """Write `size` bytes from `source` into the datastore file (replacing it), streamed."""
        ...


class FileTierStore(Protocol):
    """A file tier outside vCenter: files kept compressed and deduplicated by content."""

    def put(self, name: str, source: ByteSource, key: str | None = None) -> dict[str, Any]:
        """Store the stream; returns its manifest (name, size, sha256, chunks, id) as data. A `key`
        replaces the live put of the same key (a put redone after a crash leaves nothing behind)."""
        ...

    def get(self, manifest: dict[str, Any], sink: ByteSink) -> None:
        """Write the file to `sink`, every chunk and the whole checked (ArchiveFileCorruptedError)."""
        ...

    def release(self, manifest: dict[str, Any]) -> None:
        """Drop the put's references; the space is reclaimed by the tier's collection."""
        ...

    def release_key(self, key: str) -> None:
        """Drop the live put of `key`, if any: one a caller committed but never recorded."""
        ...

    def stats(self) -> tuple[int, int]:
        """(logical bytes, stored bytes) of the tier."""
        ...


class ArchiveStorage(StreamingFiles, Protocol):
    """Datastore files and VM records. Faults: VCenterFaultError / VCenterObjectNotFoundError."""

    def machine_record(self, vm_id: str) -> dict[str, Any]:
        """The VM's configuration as vCenter holds it: name, cpus, memory_mib, guest_id, power,
        resource_pool, host, datastore, folder (the VM's directory on it), disks [{file (name in the
        folder), capacity_kib}], nics [{network, portgroup_key, mac}], ip, hostname."""
        ...

    def vm_files(self, vm_id: str) -> list[DatastoreFile]:
        """Every file in the VM's directory, sorted by path (the datastore's own browser)."""
        ...

    def vm_file_sizes(self, vm_id: str) -> list[tuple[DatastoreFile, int]]:
        """`vm_files` with each file's size as the datastore's browser lists it (a hint: what is
        recorded is the size read with the file's SHA-256)."""
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

    def power_on(self, vm_id: str) -> None:
        """Power the VM on (one already on is no error), without reading it back: an archive's
        machines after their copy, a restored VM once its files are checked."""
        ...

    def power_off(self, vm_id: str) -> None:
        """Power the VM off (one already off is no error), the task alone, without reading its
        power state first: an archive's machines made consistent for their copy."""
        ...

    def attach_disks(self, vm_id: str, vmx: DatastoreFile, record: dict[str, Any]) -> None:
        """Give a registered VM the record's disks it lacks, backed by the files beside its .vmx (a
        disk whose file is not there fails, FileNotFound): a restore registers a VM with no disks
        while its disk files still copy, then attaches them once they are back and checked."""
        ...
