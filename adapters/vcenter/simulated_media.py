"""The simulated driver's datastores (the DatastoreFiles port), mixed into SimulatedVCenter.

A simulation: no datastore holds the bytes. An upload is read to the end, chunk by chunk, and
only the file's size and SHA-256 are kept in the inventory (so a 4 GiB ISO costs a few bytes
here); listing, searching, deleting and CD-ROM backings then behave as vCenter's do.
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from collections.abc import Callable, Iterable
from typing import Any

from domain.errors import VCenterFaultError, VCenterObjectNotFoundError
from domain.media_ports import DatastoreFile

# vcsim's default datastore (its -ds flag adds LocalDS_1...).
DEFAULT_DATASTORES: dict[str, tuple[str, ...]] = {"DC0": ("LocalDS_0",)}


class SimulatedMedia:
    _lock: threading.RLock
    _files: dict[str, dict[str, Any]]
    _vms: dict[str, Any]
    _save: Callable[[], None]
    _maybe_fail: Callable[[str], None]

    def _datastore(self, datacenter: str, datastore: str) -> None:
        if datacenter not in DEFAULT_DATASTORES:
            raise VCenterObjectNotFoundError(f"datacenter '{datacenter}' not found in vCenter")
        if datastore not in DEFAULT_DATASTORES[datacenter]:
            raise VCenterObjectNotFoundError(f"datastore '{datastore}' not found in datacenter '{datacenter}'")

    def upload_file(self, datacenter: str, datastore: str, path: str, chunks: Iterable[bytes], size: int) -> None:
        with self._lock:
            self._datastore(datacenter, datastore)
            self._maybe_fail("upload_file")
        digest = hashlib.sha256()
        received = 0
        for chunk in chunks:
            received += len(chunk)
            if received > size:
                raise VCenterFaultError(f"vCenter fault during upload of {path}: more than the {size} bytes announced")
            digest.update(chunk)
        if received != size:
            raise VCenterFaultError(f"vCenter fault during upload of {path}: {received} of {size} bytes received")
        with self._lock:
            self._files[f"{datacenter}\x00{datastore}\x00{path}"] = {"size": size, "sha256": digest.hexdigest()}
            self._save()

    def delete_file(self, datacenter: str, datastore: str, path: str) -> bool:
        with self._lock:
            self._datastore(datacenter, datastore)
            self._maybe_fail("delete_file")
            found = self._files.pop(f"{datacenter}\x00{datastore}\x00{path}", None)
            if found is not None:
                self._save()
            return found is not None

    def search_datastore(self, datacenter: str, datastore: str, folder: str, pattern: str) -> list[DatastoreFile]:
        folder = folder.strip("/")
        with self._lock:
            self._datastore(datacenter, datastore)
            found = []
            for key, record in self._files.items():
                dc, ds, path = key.split("\x00")
                parent, _, name = path.rpartition("/")
                if (dc, ds, parent) == (datacenter, datastore, folder) and fnmatch.fnmatchcase(name, pattern):
                    found.append(DatastoreFile(datastore=ds, path=path, size=int(record["size"])))
        return sorted(found, key=lambda f: f.path)

    def attach_iso(self, vm_id: str, datastore_path: str) -> None:
        with self._lock:
            vm = self._vms.get(vm_id)
            if vm is None:
                raise VCenterObjectNotFoundError(f"VM {vm_id} not found in vCenter")
            self._maybe_fail("attach_iso")
            # Like vCenter (and vcsim), the backing is not checked: callers search the datastore first.
            if vm.cdroms[:1] != [datastore_path]:
                vm.cdroms = [datastore_path, *vm.cdroms[1:]]
                self._save()

    def vm_isos(self, vm_id: str) -> list[str]:
        with self._lock:
            vm = self._vms.get(vm_id)
            if vm is None:
                raise VCenterObjectNotFoundError(f"VM {vm_id} not found in vCenter")
            return list(vm.cdroms)

    def file_digest(self, datacenter: str, datastore: str, path: str) -> str | None:
        """Test hook: the SHA-256 of what was uploaded (the simulation keeps no bytes)."""
        with self._lock:
            record = self._files.get(f"{datacenter}\x00{datastore}\x00{path}")
            return None if record is None else str(record["sha256"])
