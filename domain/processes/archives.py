"""The archive process manager: Archive Now, restore and deletion carried out on vCenter.

Each step is recorded on the Archive before the next begins, so a worker killed at any point and
started again continues after the last recorded step: consistency (power-off or snapshot) once,
each machine's record once, each file once (FileStored). A file copied but not yet recorded is
copied again over the half-written target. A file whose SHA-256 an earlier archive of the same
configuration (or an earlier machine of this one) already holds on the tier is referenced, not
copied. vCenter faults become Failed / RestoreFailed events; anything else propagates and the
follower retries the event.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial
from typing import Any
from uuid import UUID

from domain.archive import ARCHIVING, DELETED, Archive, archive_folder, consistency_snapshot
from domain.archive_ports import ArchiveFileCorruptedError, ArchiveStorage, DatastoreFile, FileDigest, FileTierStore
from domain.deployment import DEPLOYED
from domain.errors import NotFoundError, VCenterFaultError
from domain.ports import VCenterDriver
from domain.processes import fenced_restore, lease_archive
from domain.processes.archive_moves import TierMoves
from domain.stagekeeper import Stagekeeper

log = logging.getLogger(__name__)
ACTOR = "stagekeeper"
TOPICS = (
    *(
        f"stagekeeper:Archive.{name}"
        for name in ("Requested", "RestoreRequested", "Deleted", "MoveStarted", "Completed", "Restored")
    ),
    # A lease whose stage says "archive": archive the deployment, then undeploy it (lease_archive below).
    "stagekeeper:Deployment.LeaseExpired",
)
# Files that are no part of a consistent copy: locks and swap always; with a snapshot, the delta
# disks and snapshot state written since (the base disks the snapshot froze are what is copied).
_NEVER = re.compile(r"(\.lck|\.vswp|\.vmem)$")
_SINCE_SNAPSHOT = re.compile(r"(-\d{6}(-delta|-sesparse)?\.vmdk|\.vmsn|\.vmsd)$")


class RestoreMismatchError(Exception):
    """A file read back during a restore does not have the SHA-256 the archive recorded."""


def restored_vm_name(restore_id: str, machine: str) -> str:
    return f"sk-{UUID(restore_id).hex[:12]}-{machine}"


class ArchiveProcess:
    def __init__(
        self,
        app: Stagekeeper,
        vcenter: VCenterDriver,
        storage: ArchiveStorage,
        file_tiers: Mapping[str, FileTierStore] | None = None,
        parallel: int = 8,
    ) -> None:
        self.app = app
        self.vcenter = vcenter
        self.storage = storage
        self.file_tiers = dict(file_tiers or {})
        self.parallel = parallel  # vCenter file tasks at once (copies, reads, registrations)
        self.moves = TierMoves(app, storage, self.file_tiers)

    def handle(self, event: Any) -> None:
        if isinstance(event, Archive.Event):
            self.drive(event.originator_id)
        elif type(event).__qualname__ == "Deployment.LeaseExpired" and getattr(event, "policy", None) == "archive":
            lease_archive.archive_on_expiry(self.app, event)

    def drive(self, archive_id: UUID) -> None:
        archive = self.app.archive(archive_id)
        if archive.state == ARCHIVING:
            self.archive(archive)
            archive = self.app.archive(archive_id)
        if archive.moving is not None:
            self.moves.move(archive)
            archive = self.app.archive(archive_id)
        if archive.releasing:
            self.moves.release_sources(archive)
            archive = self.app.archive(archive_id)
        restore = archive.restoring()
        if restore is not None:
            self.restore(archive, restore)
            archive = self.app.archive(archive_id)
        for deployment_id in fenced_restore.pending(self.app, archive):
            fenced_restore.finish(self.app, self.vcenter, deployment_id, self.parallel)
        if archive.state == DELETED:
            self.remove_files(archive)
        lease_archive.undeploy_when_archived(self.app, archive)

    # -- archive -----------------------------------------------------------------------------------
    def _step(self, archive_id: UUID, method: Any, **kwargs: Any) -> Archive:
        return self.app.record_archive_step(archive_id, partial(method, **kwargs, actor=ACTOR)).value

    def archive(self, archive: Archive) -> None:
        try:
            if not archive.consistent:
                archive = self._step(archive.id, Archive.record_consistent, powered_off=self._make_consistent(archive))
            unrecorded = [m for m in archive.machines if m["record"] is None]
            records = self._each(lambda m: self.storage.machine_record(m["vm_id"]), unrecorded)
            for machine, record in zip(unrecorded, records, strict=True):
                archive = self._step(archive.id, Archive.record_machine, machine=machine["name"], record=record)
            archive = self._store_files(archive, self._known_files(archive))
            self._undo_consistency(archive)
            self._step(archive.id, Archive.complete)
        except VCenterFaultError as fault:
            self._undo_consistency(archive, quietly=True)
            self._step(archive.id, Archive.fail, failure=fault.message)

    def _each(self, work: Any, items: list[Any]) -> list[Any]:
        """`work(item)` for every item, `parallel` at a time; results in the items' order."""
        if len(items) <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            return list(pool.map(work, items))

    def _make_consistent(self, archive: Archive) -> list[str]:
        """Power off (recording which machines the deployment had on) or snapshot every machine.
        The deployment's record says what was on, so a redone step after a crash still knows."""
        deployment = self.app.deployment(archive.deployment_id)
        if archive.consistency == "snapshot":
            name = consistency_snapshot(archive.id)
            self._each(lambda m: self.vcenter.create_snapshot(m["vm_id"], name), archive.machines)
            return []
        powered_off = [m["name"] for m in archive.machines if deployment.machine(m["name"]).get("power") == "poweredOn"]
        self._each(lambda m: self.vcenter.power_off(m["vm_id"]), archive.machines)
        return powered_off

    def _undo_consistency(self, archive: Archive, quietly: bool = False) -> None:
        try:
            if archive.consistency == "snapshot":
                name = consistency_snapshot(archive.id)
                self._each(lambda m: self.vcenter.remove_snapshot(m["vm_id"], name), archive.machines)
            elif archive.powered_off and self._still_deployed(archive):
                on = [m for m in archive.machines if m["name"] in archive.powered_off]
                self._each(lambda m: self.vcenter.power_on(m["vm_id"]), on)
        except (VCenterFaultError, NotFoundError):
            if not quietly:
                raise
            log.warning("archive %s: could not undo its power-off / snapshot", archive.id, exc_info=True)

    def _still_deployed(self, archive: Archive) -> bool:
        return self.app.deployment(archive.deployment_id).state == DEPLOYED

    def _known_files(self, archive: Archive) -> dict[str, tuple[str, str]]:
        """SHA-256 -> (archive id, path) of files already on this archive's tier."""
        known: dict[str, tuple[str, str]] = {}
        for other_id in archive.previous:
            other = self.app.archive(UUID(other_id))
            if other.state == DELETED:
                continue
            for stored in other.files:
                if stored["tier"] == archive.tier:
                    known.setdefault(stored["sha256"], (stored["reused_from"] or other_id, stored["path"]))
        for stored in archive.files:
            known.setdefault(stored["sha256"], (stored["reused_from"] or str(archive.id), stored["path"]))
        return known

    def _store_files(self, archive: Archive, known: dict[str, tuple[str, str]]) -> Archive:
        """Digest and copy the files not stored yet, `parallel` at a time; each FileStored is recorded
        from this thread as its copy completes."""
        work: list[tuple[str, DatastoreFile, str]] = []
        for machine in archive.machines:
            for source in self.storage.vm_files(machine["vm_id"]):
                name = source.path.rsplit("/", 1)[-1]
                if _NEVER.search(name) or (archive.consistency == "snapshot" and _SINCE_SNAPSHOT.search(name)):
                    continue
                if archive.stored(machine["name"], name) is None:
                    work.append((machine["name"], source, name))
        for machine_name in sorted({m for m, _, _ in work}):
            self.storage.make_folder(DatastoreFile(archive.tier, archive_folder(archive.id, machine_name)))
        lock = threading.Lock()

        def store(machine: str, source: DatastoreFile, name: str) -> tuple[str, str, FileDigest, str | None, str]:
            digest = self.storage.digest(source)
            path = f"{archive_folder(archive.id, machine)}/{name}"
            with lock:  # the first file of a content copies it; any other references that copy
                reuse = known.setdefault(digest.sha256, (str(archive.id), path))
            if reuse != (str(archive.id), path):
                return machine, name, digest, reuse[0], reuse[1]
            target = DatastoreFile(archive.tier, path)
            for attempt in range(3):
                self.storage.copy_file(source, target)
                # Checked on the tier, not trusted: a copy a killed worker left running may still land
                # over this one (seen on vcsim under load); the file is recorded only as it is stored.
                if self.storage.digest(target).sha256 == digest.sha256:
                    break
                time.sleep(0.5 * (attempt + 1))
            else:
                raise VCenterFaultError(f"{path}: the copy on {archive.tier} does not match its source's SHA-256")
            return machine, name, digest, None, path

        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            for done in as_completed([pool.submit(store, *item) for item in work]):
                owner, name, digest, reused_from, path = done.result()
                archive = self._step(
                    archive.id, Archive.record_file, machine=owner, name=name, size=digest.size,
                    sha256=digest.sha256, tier=archive.tier, path=path, reused_from=reused_from,
                )  # fmt: skip
        return archive

    # -- restore -----------------------------------------------------------------------------------
    def restore(self, archive: Archive, restore: dict[str, Any]) -> None:
        """Every machine copied back, checked, registered and powered on, `parallel` at a time; each
        MachineRestored recorded from this thread; then the deployment in one write."""
        restore_id = restore["id"]
        vms = {
            name: {"vm_id": vm_id, "vm_name": restored_vm_name(restore_id, name)}
            for name, vm_id in restore["machines"].items()
        }

        def bring_back(machine: dict[str, Any]) -> tuple[str, str]:
            vm_id = self._restore_machine(archive, machine, restore, restored_vm_name(restore_id, machine["name"]))
            if not restore.get("fence"):  # a fenced one is powered on once its NICs are on the fence
                self.vcenter.power_on(vm_id)
            return machine["name"], vm_id

        failure: str | None = None
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            pending = [pool.submit(bring_back, m) for m in archive.machines if m["name"] not in restore["machines"]]
            for done in as_completed(pending):
                try:
                    name, vm_id = done.result()
                except (VCenterFaultError, RestoreMismatchError, ArchiveFileCorruptedError) as fault:
                    failure = failure or (fault.message if isinstance(fault, VCenterFaultError) else str(fault))
                    continue
                archive = self._step(
                    archive.id, Archive.record_machine_restored, restore_id=restore_id, machine=name, vm_id=vm_id
                )
                vms[name] = {"vm_id": vm_id, "vm_name": restored_vm_name(restore_id, name)}
        try:
            for found in vms.values() if not restore.get("fence") else ():
                self.vcenter.power_on(found["vm_id"])  # machines recorded before a restart: on again
        except VCenterFaultError as fault:
            failure = failure or fault.message
        if failure is not None:
            self._step(archive.id, Archive.record_restore_failed, restore_id=restore_id, failure=failure)
            return
        self.app.complete_restore(archive.id, restore_id, vms, ACTOR)

    def _restore_machine(self, archive: Archive, machine: dict[str, Any], restore: dict[str, Any], vm_name: str) -> str:
        record = machine["record"]
        old = record["name"]
        folder = DatastoreFile(record["datastore"], vm_name)
        self.storage.make_folder(folder)

        def renamed(name: str) -> str:
            return vm_name + name[len(old) :] if name.startswith(old) else name

        def bring_back(stored: dict[str, Any]) -> None:
            target = DatastoreFile(folder.datastore, f"{vm_name}/{renamed(stored['name'])}")
            self.moves.bring(stored, target)  # from a file tier: staged back onto the datastore
            digest = self.storage.digest(target)
            if digest.sha256 != stored["sha256"]:
                raise RestoreMismatchError(
                    f"file {stored['name']} of machine '{machine['name']}' ({stored['tier']}: {stored['path']}) "
                    f"reads back with SHA-256 {digest.sha256}, not the archived {stored['sha256']}"
                )

        self._each(bring_back, [f for f in archive.files if f["machine"] == machine["name"]])
        registered = {**record, "disks": [{**d, "file": renamed(d["file"])} for d in record["disks"]]}
        vmx = DatastoreFile(folder.datastore, f"{vm_name}/{renamed(record['vmx'])}")
        return self.storage.register_vm(vmx, vm_name, restore["resource_pool"], registered)

    # -- deletion ----------------------------------------------------------------------------------
    def remove_files(self, archive: Archive) -> None:
        """Delete the files this archive copied, except those a live archive still references."""
        referenced = {
            (f["tier"], f["path"])
            for other in (self.app.archive(i) for i in self.app.archive_ids() if i != archive.id)
            if other.state != DELETED
            for f in other.files
        }
        for stored in archive.files:
            if stored["reused_from"] is None and (stored["tier"], stored["path"]) not in referenced:
                self.moves.free(stored)
