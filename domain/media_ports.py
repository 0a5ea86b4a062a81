"""The datastore side of the media library: what the domain asks of vCenter's datastores.

Both vCenter drivers implement it (the pyvmomi driver through vCenter's datastore file access
and the datastore browser; the simulation in memory). It is its own port, beside VCenterDriver,
so the drivers' other users need not know about files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from domain.errors import InfrastructureError


@dataclass(frozen=True)
class DatastoreFile:
    """One file on a datastore: `path` is relative to the datastore's root (folder/name)."""

    datastore: str
    path: str
    size: int

    @property
    def datastore_path(self) -> str:
        """vSphere's notation, as a CD-ROM backing names it: `[datastore] folder/name`."""
        return f"[{self.datastore}] {self.path}"


@runtime_checkable
class DatastoreFiles(Protocol):
    """Files on a datastore. Faults surface as domain errors (VCenterFaultError,
    VCenterObjectNotFoundError for a missing datacenter or datastore, UnavailableError)."""

    def upload_file(self, datacenter: str, datastore: str, path: str, chunks: Iterable[bytes], size: int) -> None:
        """Write a file of exactly `size` bytes, read from `chunks` one at a time (never all held
        at once), creating its folder when needed; an existing file is replaced. Chunks that add
        up to another size: VCenterFaultError, and no file is left behind."""
        ...

    def delete_file(self, datacenter: str, datastore: str, path: str) -> bool:
        """Delete a file; False when there was none."""
        ...

    def search_datastore(self, datacenter: str, datastore: str, folder: str, pattern: str) -> list[DatastoreFile]:
        """The files directly in `folder` whose names match the glob `pattern` (vSphere's
        SearchDatastore matchPattern), with their sizes, sorted by path; [] when the folder is absent."""
        ...

    def attach_iso(self, vm_id: str, datastore_path: str) -> None:
        """Give the VM a CD-ROM backed by the ISO file (`[datastore] folder/name`), connected and
        connected at power-on; the first CD-ROM is reused, one is added when the VM has none.
        Already so: nothing changes."""
        ...

    def vm_isos(self, vm_id: str) -> list[str]:
        """The ISO backings of the VM's CD-ROMs (`[datastore] folder/name`), in device order."""
        ...


def datastore_files(vcenter: object) -> DatastoreFiles:
    """The vCenter driver as the media port (both drivers are); anything else is a set-up error."""
    if not isinstance(vcenter, DatastoreFiles):
        raise InfrastructureError(f"the vCenter driver {type(vcenter).__name__} has no datastore file access")
    return vcenter
