"""The Archive aggregate: a restorable copy of one deployment's machines ("Archive Now").

An archive records the exact configuration version, the machines' vCenter records (CPU, memory,
disks, NICs with port groups and MACs, addresses, placement) and every file copied, with its size
and SHA-256 and the tier holding it. The process manager (domain/processes/archives.py) records
each step here, so a restarted worker continues after the last FileStored. Restores are recorded
on the archive too (RestoreRequested .. Restored / RestoreFailed); the restored deployment is a new
Deployment aggregate saved in the same write as Restored.

States: archiving -> complete | failed -> deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import ConflictError, InvalidTransitionError, NotFoundError

ARCHIVING = "archiving"
COMPLETE = "complete"
FAILED = "failed"
DELETED = "deleted"
CONSISTENCY = ("power-off", "snapshot")
MAX_RETENTION_DAYS = 36500
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def archive_folder(archive_id: UUID, machine: str) -> str:
    """Where one machine's files live on a datastore tier (relative to the datastore's root)."""
    return f"stagekeeper-archives/{archive_id}/{machine}"


def consistency_snapshot(archive_id: UUID) -> str:
    return f"sk-archive-{archive_id.hex[:12]}"


class Archive(Aggregate):
    TOPIC = "stagekeeper:Archive"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:Archive.Created"

    @event("Requested", topic="stagekeeper:Archive.Requested")
    def __init__(
        self,
        service_id: UUID,
        deployment_id: UUID,
        configuration_id: UUID,
        configuration_name: str,
        configuration_version: int,
        stage: str,
        networks: list[dict[str, Any]],
        machines: list[dict[str, Any]],
        consistency: str,
        tier: str,
        retention_days: int | None,
        previous: list[str],
        actor: str,
        reason: str | None,
    ) -> None:
        self.service_id = service_id
        self.deployment_id = deployment_id
        self.configuration_id = configuration_id
        self.configuration_name = configuration_name
        self.configuration_version = configuration_version
        self.stage = stage
        self.networks = list(networks)
        # name, vm_id, vm_name, spec (the configuration's machine), record (from vCenter, once read)
        self.machines: list[dict[str, Any]] = [{**m, "record": None} for m in machines]
        self.consistency = consistency
        self.tier = tier
        self.retention_days = retention_days
        self.previous = list(previous)  # earlier complete archives of the configuration (dedupe)
        self.requested_by = actor
        self.reason = reason
        self.state = ARCHIVING
        self.failure: str | None = None
        self.consistent = False
        self.powered_off: list[str] = []  # machines this archive powered off (powered on again after)
        self.files: list[dict[str, Any]] = []  # machine, name, size, sha256, tier, path, reused_from
        self.hold = False
        self.hold_reason: str | None = None
        self.restores: dict[str, dict[str, Any]] = {}  # restore (new deployment) id -> its record
        self.moving: dict[str, Any] | None = None  # {"to", "from", "moved": {machine/name: location}}
        # copies a finished move (the old ones) or a failed move (the new ones) still has to free:
        self.releasing: list[dict[str, Any]] = []
        self.move_failure: str | None = None

    # -- archiving ------------------------------------------------------------------------------
    def machine(self, name: str) -> dict[str, Any]:
        for machine in self.machines:
            if machine["name"] == name:
                return machine
        raise NotFoundError(f"archive {self.id} has no machine '{name}'")

    def stored(self, machine: str, name: str) -> dict[str, Any] | None:
        return next((f for f in self.files if f["machine"] == machine and f["name"] == name), None)

    def _require(self, states: tuple[str, ...], action: str) -> None:
        if self.state not in states:
            raise InvalidTransitionError(f"cannot {action}: archive {self.id} is {self.state}")

    def record_consistent(self, powered_off: list[str], actor: str) -> None:
        self._require((ARCHIVING,), "record consistency")
        if self.consistent:
            raise InvalidTransitionError("the archive's machines are already consistent")
        self._consistent(powered_off=powered_off, actor=actor, reason=None)

    @event("ConsistencyReached", topic="stagekeeper:Archive.ConsistencyReached")
    def _consistent(self, powered_off: list[str], actor: str, reason: str | None) -> None:
        self.consistent = True
        self.powered_off = list(powered_off)

    def record_machine(self, machine: str, record: dict[str, Any], actor: str) -> None:
        self._require((ARCHIVING,), "record a machine")
        if self.machine(machine)["record"] is not None:
            raise InvalidTransitionError(f"machine '{machine}' is already recorded")
        self._machine_archived(machine=machine, record=record, actor=actor, reason=None)

    @event("MachineArchived", topic="stagekeeper:Archive.MachineArchived")
    def _machine_archived(self, machine: str, record: dict[str, Any], actor: str, reason: str | None) -> None:
        self.machine(machine)["record"] = record

    def record_file(
        self,
        machine: str,
        name: str,
        size: int,
        sha256: str,
        tier: str,
        path: str,
        reused_from: str | None,
        actor: str,
    ) -> None:
        self._require((ARCHIVING,), "store a file")
        if self.stored(machine, name) is not None:
            raise InvalidTransitionError(f"file '{name}' of machine '{machine}' is already stored")
        self._file_stored(
            machine=machine, name=name, size=size, sha256=sha256, tier=tier, path=path,
            reused_from=reused_from, actor=actor, reason=None,
        )  # fmt: skip

    @event("FileStored", topic="stagekeeper:Archive.FileStored")
    def _file_stored(
        self,
        machine: str,
        name: str,
        size: int,
        sha256: str,
        tier: str,
        path: str,
        reused_from: str | None,
        actor: str,
        reason: str | None,
    ) -> None:
        self.files.append(
            {"machine": machine, "name": name, "size": size, "sha256": sha256, "tier": tier, "path": path,
             "reused_from": reused_from}
        )  # fmt: skip

    def complete(self, actor: str) -> None:
        self._require((ARCHIVING,), "complete")
        missing = [m["name"] for m in self.machines if m["record"] is None]
        if missing:
            raise InvalidTransitionError(f"machines {', '.join(missing)} have no record yet")
        self._completed(bytes=sum(f["size"] for f in self.files), actor=actor, reason=None)

    @event("Completed", topic="stagekeeper:Archive.Completed")
    def _completed(self, bytes: int, actor: str, reason: str | None) -> None:
        self.state = COMPLETE

    def fail(self, failure: str, actor: str) -> None:
        self._require((ARCHIVING,), "fail")
        self._failed(failure=failure[:2000], actor=actor, reason=None)

    @event("Failed", topic="stagekeeper:Archive.Failed")
    def _failed(self, failure: str, actor: str, reason: str | None) -> None:
        self.state = FAILED
        self.failure = failure

    # -- hold, retention, deletion --------------------------------------------------------------
    def set_hold(self, actor: str, reason: str | None) -> None:
        self._require((ARCHIVING, COMPLETE, FAILED), "put on hold")
        if self.hold:
            raise ConflictError(f"archive {self.id} is already on hold")
        self._hold_set(actor=actor, reason=reason)

    @event("HoldSet", topic="stagekeeper:Archive.HoldSet")
    def _hold_set(self, actor: str, reason: str | None) -> None:
        self.hold = True
        self.hold_reason = reason

    def lift_hold(self, actor: str, reason: str | None) -> None:
        if not self.hold:
            raise ConflictError(f"archive {self.id} is not on hold")
        self._hold_lifted(actor=actor, reason=reason)

    @event("HoldLifted", topic="stagekeeper:Archive.HoldLifted")
    def _hold_lifted(self, actor: str, reason: str | None) -> None:
        self.hold = False
        self.hold_reason = None

    def set_retention(self, days: int | None, actor: str, reason: str | None) -> None:
        self._require((ARCHIVING, COMPLETE, FAILED), "set retention")
        self._retention_set(days=days, actor=actor, reason=reason)

    @event("RetentionSet", topic="stagekeeper:Archive.RetentionSet")
    def _retention_set(self, days: int | None, actor: str, reason: str | None) -> None:
        self.retention_days = days

    def expires_at(self) -> datetime | None:
        if self.retention_days is None:
            return None
        return self.created_on + timedelta(days=self.retention_days)

    def expired(self, now: datetime) -> bool:
        expiry = self.expires_at()
        return expiry is not None and now >= expiry and not self.hold and self.state in (COMPLETE, FAILED)

    def delete(self, actor: str, reason: str | None) -> None:
        self._require((COMPLETE, FAILED), "delete")
        if self.hold:
            raise ConflictError(f"archive {self.id} is on hold: lift the hold before deleting it", field="hold")
        if any(r["state"] == "restoring" for r in self.restores.values()):
            raise ConflictError(f"archive {self.id} is being restored; delete it after the restore ends")
        if self.moving is not None:
            raise ConflictError(f"archive {self.id} is moving to tier {self.moving['to']}; delete it after the move")
        self._deleted(actor=actor, reason=reason)

    @event("Deleted", topic="stagekeeper:Archive.Deleted")
    def _deleted(self, actor: str, reason: str | None) -> None:
        self.state = DELETED

    # -- restores -------------------------------------------------------------------------------
    def request_restore(
        self, restore_id: UUID, stage: str, resource_pool: str, fence: bool, actor: str, reason: str | None
    ) -> None:
        self._require((COMPLETE,), "restore")
        if self.moving is not None:
            raise ConflictError(f"archive {self.id} is moving to tier {self.moving['to']}; restore it after the move")
        if any(r["state"] == "restoring" for r in self.restores.values()):
            raise ConflictError(f"archive {self.id} is being restored already; wait for that restore to end")
        self._restore_requested(
            restore_id=str(restore_id), stage=stage, resource_pool=resource_pool, fence=fence, actor=actor,
            reason=reason,
        )  # fmt: skip

    @event("RestoreRequested", topic="stagekeeper:Archive.RestoreRequested")
    def _restore_requested(
        self, restore_id: str, stage: str, resource_pool: str, fence: bool, actor: str, reason: str | None
    ) -> None:
        self.restores[restore_id] = {
            "id": restore_id, "stage": stage, "resource_pool": resource_pool, "fence": fence, "state": "restoring",
            "requested_by": actor, "machines": {}, "failure": None, "deployment_id": None,
        }  # fmt: skip

    def restoring(self) -> dict[str, Any] | None:
        return next((r for r in self.restores.values() if r["state"] == "restoring"), None)

    def record_machine_restored(self, restore_id: str, machine: str, vm_id: str, actor: str) -> None:
        restore = self.restores.get(restore_id)
        if restore is None or restore["state"] != "restoring" or machine in restore["machines"]:
            raise InvalidTransitionError(f"machine '{machine}' of restore {restore_id} needs no recording")
        self._machine_restored(restore_id=restore_id, machine=machine, vm_id=vm_id, actor=actor, reason=None)

    @event("MachineRestored", topic="stagekeeper:Archive.MachineRestored")
    def _machine_restored(self, restore_id: str, machine: str, vm_id: str, actor: str, reason: str | None) -> None:
        self.restores[restore_id]["machines"][machine] = vm_id

    def record_restored(self, restore_id: str, deployment_id: UUID, actor: str) -> None:
        restore = self.restores.get(restore_id)
        if restore is None or restore["state"] != "restoring":
            raise InvalidTransitionError(f"restore {restore_id} is not under way")
        self._restored(restore_id=restore_id, deployment_id=str(deployment_id), actor=actor, reason=None)

    @event("Restored", topic="stagekeeper:Archive.Restored")
    def _restored(self, restore_id: str, deployment_id: str, actor: str, reason: str | None) -> None:
        self.restores[restore_id]["state"] = "restored"
        self.restores[restore_id]["deployment_id"] = deployment_id

    def record_restore_failed(self, restore_id: str, failure: str, actor: str) -> None:
        restore = self.restores.get(restore_id)
        if restore is None or restore["state"] != "restoring":
            raise InvalidTransitionError(f"restore {restore_id} is not under way")
        self._restore_failed(restore_id=restore_id, failure=failure[:2000], actor=actor, reason=None)

    @event("RestoreFailed", topic="stagekeeper:Archive.RestoreFailed")
    def _restore_failed(self, restore_id: str, failure: str, actor: str, reason: str | None) -> None:
        self.restores[restore_id]["state"] = "failed"
        self.restores[restore_id]["failure"] = failure

    # -- moves between tiers --------------------------------------------------------------------
    # Copy every file to the new tier, check it, record it (FileMoved); then Moved switches the
    # archive over in one event, and only after that are the old copies freed (SourcesReleased).
    # At every point one complete copy is recorded: the old one until Moved, the new one after.
    def request_move(self, tier: str, actor: str, reason: str | None) -> None:
        self._require((COMPLETE,), "move")
        if tier == self.tier:
            raise ConflictError(f"archive {self.id} is on tier {tier} already", field="tier")
        if self.moving is not None:
            raise ConflictError(f"archive {self.id} is moving to tier {self.moving['to']} already", field="tier")
        if self.restoring() is not None or self.releasing:
            raise ConflictError(f"archive {self.id} is busy (a restore or the end of a move); move it after")
        self._move_started(to_tier=tier, from_tier=self.tier, actor=actor, reason=reason)

    @event("MoveStarted", topic="stagekeeper:Archive.MoveStarted")
    def _move_started(self, to_tier: str, from_tier: str, actor: str, reason: str | None) -> None:
        self.moving = {"to": to_tier, "from": from_tier, "moved": {}}
        self.move_failure = None

    def record_file_moved(
        self, machine: str, name: str, path: str, manifest: dict[str, Any] | None, actor: str
    ) -> None:
        if self.moving is None or f"{machine}/{name}" in self.moving["moved"] or self.stored(machine, name) is None:
            raise InvalidTransitionError(f"file '{name}' of machine '{machine}' needs no move")
        self._file_moved(
            machine=machine, name=name, tier=self.moving["to"], path=path, manifest=manifest, actor=actor, reason=None
        )

    @event("FileMoved", topic="stagekeeper:Archive.FileMoved")
    def _file_moved(
        self, machine: str, name: str, tier: str, path: str, manifest: dict[str, Any] | None, actor: str,
        reason: str | None,
    ) -> None:  # fmt: skip
        assert self.moving is not None
        self.moving["moved"][f"{machine}/{name}"] = {"tier": tier, "path": path, "manifest": manifest}

    def complete_move(self, actor: str) -> None:
        if self.moving is None:
            raise InvalidTransitionError(f"archive {self.id} is not moving")
        missing = [
            f"{f['machine']}/{f['name']}"
            for f in self.files
            if f"{f['machine']}/{f['name']}" not in self.moving["moved"]
        ]
        if missing:
            raise InvalidTransitionError(f"files {', '.join(missing[:5])} are not on tier {self.moving['to']} yet")
        old = [
            {"tier": f["tier"], "path": f["path"], "manifest": f.get("manifest"), "owned": f["reused_from"] is None}
            for f in self.files
        ]
        self._moved(tier=self.moving["to"], from_tier=self.moving["from"], released=old, actor=actor, reason=None)

    @event("Moved", topic="stagekeeper:Archive.Moved")
    def _moved(self, tier: str, from_tier: str, released: list[dict[str, Any]], actor: str, reason: str | None) -> None:
        assert self.moving is not None
        for stored in self.files:
            location = self.moving["moved"][f"{stored['machine']}/{stored['name']}"]
            stored.update(tier=location["tier"], path=location["path"], manifest=location["manifest"], reused_from=None)
        self.tier = tier
        self.moving = None
        self.releasing = list(released)

    def record_sources_released(self, actor: str) -> None:
        if not self.releasing:
            raise InvalidTransitionError(f"archive {self.id} has no old copies to free")
        self._sources_released(count=len(self.releasing), actor=actor, reason=None)

    @event("SourcesReleased", topic="stagekeeper:Archive.SourcesReleased")
    def _sources_released(self, count: int, actor: str, reason: str | None) -> None:
        self.releasing = []

    def fail_move(self, failure: str, actor: str) -> None:
        """The archive stays where it was; the copies the move made on the new tier (its FileMoved)
        are to be freed like the old copies after Moved (SourcesReleased), so a move never retried
        leaves nothing allocated on the tier it failed to reach."""
        if self.moving is None:
            raise InvalidTransitionError(f"archive {self.id} is not moving")
        made = [{**location, "owned": True} for location in self.moving["moved"].values()]
        self._move_failed(tier=self.moving["to"], failure=failure[:2000], released=made, actor=actor, reason=None)

    @event("MoveFailed", topic="stagekeeper:Archive.MoveFailed")
    def _move_failed(
        self, tier: str, failure: str, actor: str, reason: str | None, released: list[dict[str, Any]] | None = None
    ) -> None:  # `released` is absent from MoveFailed recorded before it existed (those puts leaked)
        self.moving = None
        self.move_failure = failure
        self.releasing = list(released or [])

    # -- what the catalogue shows ---------------------------------------------------------------
    def size_by_tier(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for stored in self.files:
            sizes[stored["tier"]] = sizes.get(stored["tier"], 0) + int(stored["size"])
        return sizes

    def stored_bytes(self) -> int:
        """Bytes this archive added to its tier (files reused from an earlier archive add none)."""
        return sum(int(f["size"]) for f in self.files if not f["reused_from"])

    def view(self) -> dict[str, Any]:
        expiry = self.expires_at()
        return {
            "id": str(self.id),
            "version": self.version,
            "service_id": str(self.service_id),
            "deployment_id": str(self.deployment_id),
            "configuration_id": str(self.configuration_id),
            "configuration_name": self.configuration_name,
            "configuration_version": self.configuration_version,
            "stage": self.stage,
            "state": self.state,
            "failure": self.failure,
            "consistency": self.consistency,
            "tier": self.tier,
            "requested_by": self.requested_by,
            "reason": self.reason,
            "requested_at": self.created_on.astimezone(UTC).strftime(_TIME_FORMAT),
            "updated_at": self.modified_on.astimezone(UTC).strftime(_TIME_FORMAT),
            "retention_days": self.retention_days,
            "expires_at": expiry.astimezone(UTC).strftime(_TIME_FORMAT) if expiry else None,
            "hold": self.hold,
            "moving_to": self.moving["to"] if self.moving else None,
            "move_failure": self.move_failure,
            "size_by_tier": self.size_by_tier(),
            "logical_bytes": sum(int(f["size"]) for f in self.files),
            "stored_bytes": self.stored_bytes(),
            "machines": [{"name": m["name"], "vm_name": m["vm_name"], "record": m["record"]} for m in self.machines],
            "files": [dict(f) for f in self.files],
            "restores": [{**r, "machines": dict(r["machines"])} for r in self.restores.values()],
        }
