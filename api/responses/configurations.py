"""Configurations, their versions and diffs."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from api.responses import Out, Position, Timestamp
from api.responses.captured import CapturedVm


class Network(Out):
    name: str
    description: str


class Disk(Out):
    size_gib: int


class Nic(Out):
    network: str


class Customization(Out):
    os: Literal["linux", "windows"]
    hostname: str
    ip_mode: Literal["static-pool", "dhcp"]


class StartOrder(Out):
    group: int
    delay_seconds: int
    wait_for: Literal["delay", "tools"]


class Machine(Out):
    name: str
    template: str
    cpus: int
    memory_mib: int
    clone_mode: Literal["full", "linked"]
    disks: list[Disk]
    nics: list[Nic]
    customization: Customization
    captured: CapturedVm | None = Field(None, description="Captured machines: their VM as vCenter described it")
    start_order: StartOrder | None = Field(None, description="Start group and wait (absent: group 0, no wait)")
    iso: str | None = Field(None, description="The media library ISO attached as a CD-ROM (absent: none)")


class Configuration(Out):
    id: UUID
    version: int
    service_id: UUID
    name: str
    description: str
    retired: bool = Field(description="Retired: readable with its history; no deploys or changes")
    networks: list[Network]
    machines: list[Machine]
    created_at: Timestamp
    updated_at: Timestamp
    position: Position


class ConfigurationSummary(Out):
    id: UUID
    service_id: UUID
    name: str
    description: str
    machines: int = Field(description="Number of machines")
    networks: int = Field(description="Number of networks")
    version: int
    created_at: Timestamp
    created_by: str
    updated_at: Timestamp
    updated_by: str
    position: Position


class ConfigurationList(Out):
    items: list[ConfigurationSummary]
    position: Position


class HistoryEntry(Out):
    version: int
    at: Timestamp
    actor: str | None
    reason: str | None
    event_type: str
    summary: str
    position: int


class ConfigurationHistory(Out):
    items: list[HistoryEntry]
    position: Position


class CollectionChanges(Out):
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    changed: dict[str, dict[str, list[Any]]] = Field(description="Per item name: field -> [before, after]")


class DefinitionChanges(Out):
    name: list[str] | None = Field(None, description="[before, after], when the name changed")
    description: list[str] | None = Field(None, description="[before, after], when the description changed")
    networks: CollectionChanges | None = None
    machines: CollectionChanges | None = None


class ConfigurationDiff(Out):
    from_: int = Field(alias="from")
    to: int
    changes: DefinitionChanges
    summary: str
