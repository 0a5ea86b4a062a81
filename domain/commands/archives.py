"""Archive Now, the catalogue, restore, hold and retention (see domain/archive.py).

Commands validate and record; the archive process manager (domain/processes/archives.py) does the
vCenter work. A restore ends with one atomic write: the new Deployment (adopting the registered
VMs, as a capture does), its claims, the service's admission and the archive's Restored event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.application import Outcome, StagekeeperApplication
from domain.archive import COMPLETE, CONSISTENCY, MAX_RETENTION_DAYS, Archive
from domain.commands.capture_claims import read_claims, take_claims
from domain.commands.fenced_restore import check_stage_fences, fence_restored
from domain.deployment import DEPLOYED, Deployment
from domain.errors import ConflictError, InvalidTransitionError, ValidationError
from domain.names import NameClaim
from domain.service import Service
from domain.text import check_reason, check_text
from domain.values import MAX_NAME, normalise_key

ARCHIVE_REQUESTED = "stagekeeper:Archive.Requested"
MAX_PAGE = 500
# The event that creates a Deployment (made by its @event __init__): a restored deployment is created
# with it under a given id, its restore's (Deployment() itself always draws a new id).
_DEPLOYMENT_REQUESTED: type[Any] = vars(Deployment)["Requested"]
_SCAN_PAGE = 1000


def check_retention(days: object) -> int | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS:
        raise ValidationError(f"retention_days must be a whole number of days, 1 to {MAX_RETENTION_DAYS}, or null",
                              field="retention_days")  # fmt: skip
    return days


class ArchiveCommands(StagekeeperApplication):
    archive_tiers: tuple[str, ...] = ("LocalDS_1",)  # hot to cold; set from settings by the runtime
    archive_retention: dict[str, int] = {}  # stage key -> default retention days; replaced, never mutated

    def archive(self, archive_id: UUID, version: int | None = None) -> Archive:
        return self.load(Archive, archive_id, "archive", version=version)

    def archive_ids(self, requested: Callable[[Any], bool] | None = None) -> list[UUID]:
        """Every archive ever requested, oldest first (read from the event store's own index);
        `requested`: only those whose Requested event it accepts (decided on that one event)."""
        ids: list[UUID] = []
        start = 1
        while True:
            page = self.select_notifications(start, _SCAN_PAGE, topics=(ARCHIVE_REQUESTED,))
            ids += [n.originator_id for n in page if requested is None or requested(self.decode(n))]  # type: ignore[misc]
            if len(page) < _SCAN_PAGE:
                return ids
            start = page[-1].id + 1

    def list_archives(
        self, services: set[str] | None, service_id: UUID | None = None, limit: int = 100, offset: int = 0
    ) -> list[Archive]:
        """Archives, newest first, of the readable `services` (None: all), deleted ones left out."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be 1 to {MAX_PAGE}", field="limit")
        if not 0 <= offset <= 1_000_000:
            raise ValidationError("offset must be 0 to 1000000", field="offset")
        found: list[Archive] = []
        for archive_id in reversed(self.archive_ids()):
            archive = self.archive(archive_id)
            if services is not None and str(archive.service_id) not in services:
                continue
            if service_id is not None and archive.service_id != service_id:
                continue
            if archive.state != "deleted":
                found.append(archive)
        return found[offset : offset + limit]

    def archive_now(
        self,
        deployment_id: UUID,
        actor: str,
        reason: str | None = None,
        consistency: object = None,
        retention_days: object = None,
    ) -> Outcome[Archive]:
        """Archive every machine of a deployment (it keeps running): by the stage's policy a restricted
        (production-like) stage is snapshotted, any other is powered off and on again around the copy."""
        reason = check_reason(reason)
        if consistency is not None and consistency not in CONSISTENCY:
            raise ValidationError(f"consistency must be one of {', '.join(CONSISTENCY)}", field="consistency")
        days = check_retention(retention_days)
        deployment = self.load(Deployment, deployment_id, "deployment")
        if deployment.state != DEPLOYED:
            raise InvalidTransitionError(f"cannot archive: deployment {deployment_id} is {deployment.state}")
        missing = [m["name"] for m in deployment.machines if not m.get("vm_id")]
        if missing:
            raise InvalidTransitionError(f"cannot archive: machines {', '.join(missing)} have no VM")
        service = self.load(Service, deployment.service_id, "service")
        stage = service.stage(deployment.stage)
        mode = str(consistency) if consistency else ("snapshot" if stage.get("restricted") else "power-off")
        if days is None:
            days = self.archive_retention.get(normalise_key(stage["name"]))  # the stage's default
        # One pass over the archives: those of this deployment under way, and the configuration's complete ones.
        related = self._archives_of(
            lambda a: True,
            lambda r: r.deployment_id == deployment_id or r.configuration_id == deployment.configuration_id,
        )
        busy = [a for a in related if a.deployment_id == deployment_id and a.state == "archiving"]
        if busy:
            raise ConflictError(f"deployment {deployment_id} is being archived already (archive {busy[0].id})")
        previous = [
            str(a.id) for a in related if a.configuration_id == deployment.configuration_id and a.state == COMPLETE
        ]
        archive = Archive(
            service_id=deployment.service_id, deployment_id=deployment.id,
            configuration_id=deployment.configuration_id, configuration_name=deployment.configuration_name,
            configuration_version=deployment.configuration_version, stage=deployment.stage,
            networks=deployment.networks,
            machines=[{"name": m["name"], "vm_id": m["vm_id"], "vm_name": m["vm_name"], "spec": m["spec"],
                       "addressing": m.get("addressing")} for m in deployment.machines],
            consistency=mode, tier=self.archive_tiers[0], retention_days=days, previous=previous[-20:],
            actor=actor, reason=reason,
        )  # fmt: skip
        return Outcome(archive, self.commit(archive))

    def _archives_of(
        self, keep: Callable[[Archive], bool], requested: Callable[[Any], bool] | None = None
    ) -> list[Archive]:
        """The archives `keep` accepts; `requested` first narrows them by their Requested event (what
        never changes after it: deployment, configuration, stage), so only those are read whole."""
        return [a for a in (self.archive(i) for i in self.archive_ids(requested)) if keep(a)]

    def record_archive_step(
        self, archive_id: UUID, step: Callable[[Archive], None], current: Archive | None = None
    ) -> Outcome[Archive]:
        """Decide `step` on the archive and save it. `current`: the archive as the caller last saved or
        read it (the returned aggregate of its previous step): the step is decided on it without
        reading the store again, and only a write that lost the race to another (the store refuses
        its version) is decided again on a fresh read, as any retry. A `current` whose save failed
        otherwise must not be passed again (it holds events the store may not have)."""
        if current is not None and current.id == archive_id and not current.pending_events:
            try:
                step(current)
                return Outcome(current, self.commit(current))
            except IntegrityError:
                pass  # another write won: `current` is stale and spoilt; decided again on a fresh read

        def attempt() -> Outcome[Archive]:
            archive = self.archive(archive_id)
            step(archive)
            return Outcome(archive, self.commit(archive))

        return self.retrying(attempt)

    def restore_archive(
        self, archive_id: UUID, stage: object, fence: object, actor: str, reason: str | None = None
    ) -> Outcome[Archive]:
        """Bring the archived machines back as a new deployment of `stage` (its id is the restore's)."""
        reason = check_reason(reason)
        if not isinstance(stage, str) or not stage:
            raise ValidationError("stage must name a stage of the archive's service", field="stage")
        check_text(stage, "stage", max_length=4 * MAX_NAME)
        if not isinstance(fence, bool):
            raise ValidationError("fence must be true or false", field="fence")

        def attempt() -> Outcome[Archive]:
            archive = self.archive(archive_id)
            service = self.load(Service, archive.service_id, "service")
            target = service.stage(stage)
            fenced = fence or target.get("fence") == "always"
            if fenced:
                check_stage_fences(target)
            archive.request_restore(uuid4(), target["name"], target["resource_pool"], fenced, actor, reason)
            return Outcome(archive, self.commit(archive))

        return self.retrying(attempt)

    def complete_restore(
        self,
        archive_id: UUID,
        restore_id: str,
        vms: dict[str, dict[str, Any]],
        actor: str,
        current: Archive | None = None,
        unrecorded: list[str] | None = None,
        ahead: RestoreReads | None = None,
    ) -> Archive:
        """Record the restored deployment (adopting the registered VMs, which the process tagged as its
        machines: recorded as tagged) and the archive's Restored in one write; the adopted machines'
        claims are taken in it (a clash fails the restore). `current`: as in record_archive_step;
        `unrecorded`: machines restored whose MachineRestored is recorded first in this write;
        `ahead`: the service and claims read ahead for these VMs (read_restore_ahead), used by the
        first attempt (a write that finds one changed since is decided again on fresh reads).
        Returns the archive as saved."""
        held = [current if current is not None and current.id == archive_id and not current.pending_events else None]
        early = [ahead if ahead is not None and ahead.vms == {n: v["vm_id"] for n, v in vms.items()} else None]

        def attempt() -> Outcome[Archive]:
            archive, held[0] = held[0] or self.archive(archive_id), None  # the caller's copy once, then read
            read, early[0] = early[0], None
            for name in unrecorded or []:
                archive.record_machine_restored(restore_id, name, vms[name]["vm_id"], actor)
            restore = archive.restores[restore_id]
            service = read.service if read is not None else self.load(Service, archive.service_id, "service")
            deployment = Deployment._create(
                _DEPLOYMENT_REQUESTED, id=restored_deployment_id(restore_id),
                service_id=service.id, configuration_id=archive.configuration_id,
                configuration_version=archive.configuration_version, configuration_name=archive.configuration_name,
                stage=restore["stage"], resource_pool=restore["resource_pool"], networks=archive.networks,
                machines=[m["spec"] for m in archive.machines], actor=restore["requested_by"],
                reason=f"restored from archive {archive.id}",
            )  # fmt: skip
            adopted = [_adopted(m, vms[m["name"]], restore["resource_pool"]) for m in archive.machines]
            if restore.get("fence"):  # the fence isolates the archived addresses: only its own are claimed
                claims = fence_restored(self, deployment, service.stage(restore["stage"]), adopted, actor)
                refused: list[dict[str, str]] = []
            else:
                claims, _, refused = take_claims(
                    self, deployment.id, adopted, lambda _owner: None, read.claims if read is not None else None
                )
            if refused:
                archive.record_restore_failed(restore_id, "; ".join(r["reason"] for r in refused), actor)
                return Outcome(archive, self.commit(archive))
            deployment.adopt(adopted, actor, None)
            for machine in archive.machines:  # tagged by the process when it registered them
                deployment.record_machine_tagged(machine["name"], actor)
            service.admit(deployment.id, restore["stage"], actor)
            archive.record_restored(restore_id, deployment.id, actor)
            aggregates: list[Aggregate] = [archive, deployment, service, *claims]
            return Outcome(archive, self.commit(*aggregates))

        return self.retrying(attempt).value

    def read_restore_ahead(self, archive: Archive, restore_id: str, vms: dict[str, str]) -> RestoreReads:
        """What complete_restore reads, read ahead once a restore's VMs are registered, while their disks
        copy: the service and the claims the restored machines take (VM ids `vms`, by machine)."""
        restore = archive.restores[restore_id]
        adopted = [
            _adopted(m, {"vm_id": vms[m["name"]], "vm_name": ""}, restore["resource_pool"]) for m in archive.machines
        ]
        claims = {} if restore.get("fence") else read_claims(self, adopted)
        return RestoreReads(dict(vms), self.load(Service, archive.service_id, "service"), claims)

    def move_archive(self, archive_id: UUID, tier: object, actor: str, reason: str | None = None) -> Outcome[Archive]:
        """Move the archive's files to another configured tier (copy, check, record, then free the old)."""
        reason = check_reason(reason)
        if not isinstance(tier, str) or tier not in self.archive_tiers:
            raise ValidationError(f"tier must be one of the configured tiers: {', '.join(self.archive_tiers)}",
                                  field="tier")  # fmt: skip

        def attempt() -> Outcome[Archive]:
            archive = self.archive(archive_id)
            archive.request_move(tier, actor, reason)
            return Outcome(archive, self.commit(archive))

        return self.retrying(attempt)

    def archive_tick(self, now: datetime, move_after_days: int, actor: str = "stagekeeper") -> dict[str, list[UUID]]:
        """The archive policy, run by the worker's scheduler with the Clock's time: an archive older than
        `move_after_days` per tier step moves to the next colder tier; expired archives are deleted."""
        moved = []
        for archive in self._archives_of(lambda a: a.state == COMPLETE and a.moving is None and not a.releasing):
            if archive.tier not in self.archive_tiers:
                continue
            step = self.archive_tiers.index(archive.tier) + 1
            due = archive.created_on + timedelta(days=move_after_days * step)
            if move_after_days and step < len(self.archive_tiers) and now >= due:
                try:
                    self.move_archive(
                        archive.id, self.archive_tiers[step], actor, f"older than {move_after_days * step} days"
                    )
                except (ConflictError, InvalidTransitionError):
                    continue
                moved.append(archive.id)
        return {"moved": moved, "deleted": self.expire_archives(now, actor)}

    def hold_archive(self, archive_id: UUID, hold: bool, actor: str, reason: str | None = None) -> Outcome[Archive]:
        reason = check_reason(reason)

        def attempt() -> Outcome[Archive]:
            archive = self.archive(archive_id)
            if hold:
                archive.set_hold(actor, reason)
            else:
                archive.lift_hold(actor, reason)
            return Outcome(archive, self.commit(archive))

        return self.retrying(attempt)

    def set_archive_retention(
        self, archive_id: UUID, days: object, actor: str, reason: str | None = None
    ) -> Outcome[Archive]:
        reason = check_reason(reason)
        checked = check_retention(days)

        def attempt() -> Outcome[Archive]:
            archive = self.archive(archive_id)
            archive.set_retention(checked, actor, reason)
            return Outcome(archive, self.commit(archive))

        return self.retrying(attempt)

    def delete_archive(self, archive_id: UUID, actor: str, reason: str | None = None) -> Outcome[Archive]:
        """Delete an archive (its files are removed from the tier by the process manager)."""
        reason = check_reason(reason)

        def attempt() -> Outcome[Archive]:
            archive = self.archive(archive_id)
            archive.delete(actor, reason)
            return Outcome(archive, self.commit(archive))

        return self.retrying(attempt)

    def expire_archives(self, now: datetime, actor: str = "stagekeeper") -> list[UUID]:
        """Delete every archive whose retention ran out and that is not on hold (a scheduler tick)."""
        expired = []
        for archive in self._archives_of(lambda a: a.expired(now)):
            try:
                self.delete_archive(archive.id, actor, f"retention of {archive.retention_days} days ran out")
            except (ConflictError, InvalidTransitionError):
                continue  # put on hold or restored meanwhile: kept
            expired.append(archive.id)
        return expired


@dataclass(frozen=True)
class RestoreReads:
    """The service and claims a restore's final write takes, read ahead for its VMs (machine -> VM id)."""

    vms: dict[str, str]
    service: Service
    claims: dict[UUID, NameClaim | None]


def restored_deployment_id(restore_id: str) -> UUID:
    """A restored deployment's id is its restore's: the process tags its VMs with it before it is written."""
    return UUID(restore_id)


def _adopted(machine: dict[str, Any], vm: dict[str, Any], resource_pool: str) -> dict[str, Any]:
    record = machine["record"] or {}
    addressing = dict(machine.get("addressing") or {})
    addressing.setdefault("macs", [])
    addressing.setdefault("ip", record.get("ip"))
    return {
        "name": machine["name"],
        "vm_id": vm["vm_id"],
        "vm_name": vm["vm_name"],
        "resource_pool": resource_pool,
        "power": "poweredOn",
        "ip": addressing.get("ip"),
        "mac": next((n["mac"] for n in record.get("nics", []) if n.get("mac")), None),
        "addressing": addressing,
    }
