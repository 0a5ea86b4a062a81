"""What the archive routes send back: one archive, and the catalogue."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from api.responses import Out, Position, Timestamp


class ArchivedFile(Out):
    machine: str
    name: str
    size: int
    sha256: str
    tier: str
    path: str = Field(description="Where the file is on its tier (a datastore path)")
    reused_from: str | None = Field(description="The archive that copied this same content first, if not this one")
    manifest: dict[str, Any] | None = Field(None, description="On a file tier: the stored file's chunks")


class ArchivedMachine(Out):
    name: str
    vm_name: str | None
    record: dict[str, Any] | None = Field(
        description="The machine as vCenter had it: cpus, memory_mib, disks, nics (network, port group, MAC), "
        "ip, hostname, host, resource_pool, datastore"
    )


class Restore(Out):
    id: str
    stage: str
    resource_pool: str
    fence: bool
    state: Literal["restoring", "restored", "failed"]
    requested_by: str
    machines: dict[str, str] = Field(description="machine -> VM id registered so far")
    failure: str | None
    deployment_id: str | None = Field(description="The deployment the restore made (once restored)")


class Archive(Out):
    id: UUID
    version: int
    service_id: UUID
    deployment_id: UUID
    configuration_id: UUID
    configuration_name: str
    configuration_version: int
    stage: str
    state: Literal["archiving", "complete", "failed", "deleted"]
    failure: str | None
    consistency: Literal["power-off", "snapshot"]
    tier: str
    requested_by: str
    reason: str | None
    requested_at: Timestamp
    updated_at: Timestamp
    retention_days: int | None
    expires_at: Timestamp | None
    hold: bool
    moving_to: str | None = Field(description="The tier a move under way copies the archive to")
    move_failure: str | None = Field(description="Why the last move stopped (the archive stayed where it was)")
    size_by_tier: dict[str, int] = Field(description="Logical bytes of the archive's files on each tier")
    logical_bytes: int
    stored_bytes: int = Field(description="Bytes this archive added (files an earlier archive holds add none)")
    machines: list[ArchivedMachine]
    files: list[ArchivedFile]
    restores: list[Restore]
    position: Position | None = None


class ArchiveSummary(Out):
    id: UUID
    service_id: UUID
    deployment_id: UUID
    configuration_id: UUID
    configuration_name: str
    configuration_version: int
    stage: str
    state: Literal["archiving", "complete", "failed", "deleted"]
    tier: str
    moving_to: str | None
    requested_by: str
    requested_at: Timestamp
    retention_days: int | None
    expires_at: Timestamp | None
    hold: bool
    size_by_tier: dict[str, int]
    logical_bytes: int
    stored_bytes: int


class TierUsage(Out):
    name: str
    kind: Literal["datastore", "file"]
    logical_bytes: int = Field(description="The archived files' sizes, summed")
    stored_bytes: int = Field(description="What the tier holds for them (after dedupe and compression)")
    saving_percent: float


class ArchiveList(Out):
    items: list[ArchiveSummary]
    tiers: list[TierUsage] = Field(description="Every configured tier, hot to cold, with the space it holds and saves")
    position: Position


SUMMARY_FIELDS = tuple(ArchiveSummary.model_fields)
