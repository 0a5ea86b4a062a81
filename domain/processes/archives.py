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
import weakref
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any
from uuid import UUID

from domain.archive import ARCHIVING, DELETED, Archive, consistency_snapshot
from domain.archive_ports import ArchiveStorage, FileTierStore
from domain.commands.archives import RestoreReads, restored_deployment_id
from domain.deployment import DEPLOYED
from domain.errors import NotFoundError, VCenterFaultError
from domain.ports import VCenterDriver
from domain.processes import fenced_restore, lease_archive
from domain.processes.archive_copies import ArchiveCopy, RestoreCopy
from domain.processes.archive_lanes import LanePools
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
_DRIVEN_KEPT = 10_000  # archives whose last driven version is kept (then forgotten, all at once)


def _left_out(consistency: str, machine: str, name: str) -> bool:
    """Files that are no part of the archive's consistent copy."""
    return bool(_NEVER.search(name) or (consistency == "snapshot" and _SINCE_SNAPSHOT.search(name)))


def _record_consistent(archive: Archive, powered_off: Callable[[], list[str]], actor: str) -> None:
    """ConsistencyReached, with the machines to power on again as read meanwhile."""
    archive.record_consistent(powered_off(), actor)


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
        self.pools = LanePools(parallel)  # their threads, kept between runs; shut down with the process
        weakref.finalize(self, self.pools.close, False)
        self.moves = TierMoves(app, storage, self.file_tiers)
        # Archive id -> the version a drive of this process ended on, everything up to it driven: the
        # events the process recorded itself (Completed, Restored) come back without a new drive. A
        # restarted process starts empty and drives every event again (each phase is idempotent).
        self._driven: dict[UUID, int] = {}

    def drive(self, archive_id: UUID) -> None:
        archive = self._drive(self.app.archive(archive_id))
        if len(self._driven) >= _DRIVEN_KEPT:
            self._driven.clear()
        self._driven[archive_id] = archive.version

    def _drive(self, archive: Archive) -> Archive:
        """Every phase the archive's state asks for; returns the archive as it last saved or read it."""
        archive_id = archive.id
        if archive.state == ARCHIVING:
            archive = self.archive(archive)
        if archive.moving is not None:
            self.moves.move(archive)
            archive = self.app.archive(archive_id)
        if archive.releasing:
            self.moves.release_sources(archive)
            archive = self.app.archive(archive_id)
        restore = archive.restoring()
        if restore is not None:
            archive = self.restore(archive, restore)
        for deployment_id in fenced_restore.pending(self.app, archive):
            fenced_restore.finish(self.app, self.vcenter, deployment_id, self.parallel)
        if archive.state == DELETED:
            self.remove_files(archive)
        lease_archive.undeploy_when_archived(self.app, archive)
        return archive

    def handle(self, event: Any) -> None:
        if isinstance(event, Archive.Event):
            if event.originator_version <= self._driven.get(event.originator_id, 0):
                return  # a drive of this process already ended on a state that includes this event
            self.drive(event.originator_id)
        elif type(event).__qualname__ == "Deployment.LeaseExpired" and getattr(event, "policy", None) == "archive":
            lease_archive.archive_on_expiry(self.app, event)

    # -- archive -----------------------------------------------------------------------------------
    def _step(self, archive: Archive, method: Any, fresh: bool = False, **kwargs: Any) -> Archive:
        """One step recorded, decided on `archive` as last saved (`fresh`: on the store's version)."""
        current = None if fresh else archive
        return self.app.record_archive_step(archive.id, partial(method, **kwargs, actor=ACTOR), current).value

    def _steps(self, archive: Archive, steps: list[tuple[Callable[..., None], dict[str, Any]]]) -> Archive:
        """Several steps recorded in one commit, in their order, decided on `archive` as last saved."""

        def record(archive: Archive) -> None:
            for method, kwargs in steps:
                method(archive, **kwargs, actor=ACTOR)

        return self.app.record_archive_step(archive.id, record, archive).value

    def archive(self, archive: Archive) -> Archive:
        """Consistency, the copies, then Completed (or Failed); returns the archive as last saved."""
        powered_off: Callable[[], list[str]] = partial(list, archive.powered_off)
        try:
            first: list[tuple[Callable[..., None], dict[str, Any]]] = []
            consistent = None
            if not archive.consistent:
                # Each machine made consistent while its folder is listed; recorded with the first
                # steps of the copy, once every machine is (its write does not hold the copies up);
                # killed before that, the next worker makes them consistent again, knowing the same
                # (what was on is the deployment's record, not vCenter's: read on the recording
                # lane, idle until that first write, while the machines are made consistent).
                powered_off = self.pools.records.submit(self._powered_on, archive).result
                consistent = self._consistency_step(archive)
                first.append((_record_consistent, {"powered_off": powered_off}))
            known, known_sizes = self._known_files(archive)
            archive = ArchiveCopy(
                self.storage, self._steps, archive, known, known_sizes, partial(_left_out, archive.consistency),
                self.pools, first, consistent,
            ).run()  # fmt: skip
            self._undo_consistency(archive, archive.powered_off)
            return self._step(archive, Archive.complete)
        except VCenterFaultError as fault:
            self._undo_consistency(archive, powered_off(), quietly=True)
            return self._step(archive, Archive.fail, fresh=True, failure=fault.message)

    def _each(self, work: Any, items: list[Any]) -> list[Any]:
        """`work(item)` for every item, `parallel` at a time; results in the items' order."""
        if len(items) <= 1:
            return [work(item) for item in items]
        return list(self.pools.tasks.map(work, items))

    def _powered_on(self, archive: Archive) -> list[str]:
        """The machines a power-off consistency turns off (to power on after): those the
        deployment's record has on, so a step redone after a crash still knows them."""
        if archive.consistency == "snapshot":
            return []
        deployment = self.app.deployment(archive.deployment_id)
        return [m["name"] for m in archive.machines if deployment.machine(m["name"]).get("power") == "poweredOn"]

    def _consistency_step(self, archive: Archive) -> Callable[[dict[str, Any]], object]:
        """Makes one machine consistent: a snapshot, or powered off (every machine: one found on that
        the deployment has off is turned off too, not on again after)."""
        if archive.consistency == "snapshot":
            name = consistency_snapshot(archive.id)
            return lambda machine: self.vcenter.create_snapshot(machine["vm_id"], name)
        return lambda machine: self.storage.power_off(machine["vm_id"])

    def _undo_consistency(self, archive: Archive, powered_off: list[str], quietly: bool = False) -> None:
        try:
            if archive.consistency == "snapshot":
                name = consistency_snapshot(archive.id)
                self._each(lambda m: self.vcenter.remove_snapshot(m["vm_id"], name), archive.machines)
            elif powered_off and self._still_deployed(archive):
                on = [m for m in archive.machines if m["name"] in powered_off]
                self._each(lambda m: self.storage.power_on(m["vm_id"]), on)
        except (VCenterFaultError, NotFoundError):
            if not quietly:
                raise
            log.warning("archive %s: could not undo its power-off / snapshot", archive.id, exc_info=True)

    def _still_deployed(self, archive: Archive) -> bool:
        return self.app.deployment(archive.deployment_id).state == DEPLOYED

    def _known_files(self, archive: Archive) -> tuple[dict[str, tuple[str, str]], set[int]]:
        """SHA-256 -> (archive id, path) of files already on this archive's tier, and their sizes."""
        known: dict[str, tuple[str, str]] = {}
        sizes: set[int] = set()
        for other in [self.app.archive(UUID(i)) for i in archive.previous] + [archive]:
            if other.state == DELETED:
                continue
            for stored in other.files:
                if stored["tier"] == archive.tier:
                    known.setdefault(stored["sha256"], (stored["reused_from"] or str(other.id), stored["path"]))
                    sizes.add(int(stored["size"]))
        return known, sizes

    # -- restore -----------------------------------------------------------------------------------
    def restore(self, archive: Archive, restore: dict[str, Any]) -> Archive:
        """Every machine copied back, checked, registered, tagged as its machine of the restored
        deployment (whose id is the restore's) and powered on (archive_copies.RestoreCopy); each
        MachineRestored recorded from this thread; then the deployment in one write, its machines
        recorded as tagged. Returns the archive as last saved."""
        restore_id = restore["id"]
        deployment_id = restored_deployment_id(restore_id)
        before = dict(restore["machines"])  # recorded by a worker before this one
        vms = {name: {"vm_id": vm_id, "vm_name": restored_vm_name(restore_id, name)} for name, vm_id in before.items()}
        latest = [archive]

        def restored(machines: list[tuple[str, str]]) -> None:
            latest[0] = self._steps(latest[0], [
                (Archive.record_machine_restored, {"restore_id": restore_id, "machine": name, "vm_id": vm_id})
                for name, vm_id in machines
            ])  # fmt: skip
            for name, vm_id in machines:
                vms[name] = {"vm_id": vm_id, "vm_name": restored_vm_name(restore_id, name)}

        def tag(vm_id: str, machine: str) -> None:
            self.vcenter.tag_vm(vm_id, deployment_id, machine)

        def ahead(registered: dict[str, str]) -> RestoreReads:
            return self.app.read_restore_ahead(latest[0], restore_id, {**before, **registered})

        pending = [m for m in archive.machines if m["name"] not in before]
        copy = RestoreCopy(
            self.storage, self.moves.bring, pending, archive.files, restore,
            {m["name"]: restored_vm_name(restore_id, m["name"]) for m in pending},
            None if restore.get("fence") else self.storage.power_on,  # fenced: on once its NICs are on the fence
            restored, self.pools, tag, ahead,
        )  # fmt: skip
        failure = copy.run()
        last = list(copy.ready)  # every machine back: the last ones are recorded in the final write
        for name, vm_id in last:
            vms[name] = {"vm_id": vm_id, "vm_name": restored_vm_name(restore_id, name)}
        try:
            for name in before:  # machines recorded before a restart: tagged (a worker of an older
                tag(before[name], name)  # version did not tag them) and on again
                if not restore.get("fence"):
                    self.storage.power_on(before[name])
        except VCenterFaultError as fault:
            failure = failure or fault.message
        if failure is not None:
            if last:
                restored(last)
            return self._step(latest[0], Archive.record_restore_failed, restore_id=restore_id, failure=failure)
        read = copy.read_ahead if isinstance(copy.read_ahead, RestoreReads) else None
        return self.app.complete_restore(
            archive.id, restore_id, vms, ACTOR, latest[0], [name for name, _ in last], read
        )

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
