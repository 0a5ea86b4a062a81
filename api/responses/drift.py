"""Drift, verification and previews of a deployment."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from api.responses import Out

DriftField = Literal["vm", "power", "cpus", "memory_mib", "disks", "nics", "macs", "resource_pool", "host"]


class DriftEntry(Out):
    machine: str
    field: DriftField
    expected: Any = Field(description="What the history says")
    actual: Any = Field(description="What vCenter has (null: the VM is gone)")
    reverting: bool = Field(description="A revert was asked for and is not carried out yet")
    revert_failure: str | None = Field(None, description="vCenter's reason when the last revert failed")


class CheckResult(Out):
    check: str
    machine: str | None = None
    target: str | None = None
    ok: bool
    detail: str


class Verification(Out):
    after: str = Field(description="The command verified: promote, copy, swap or upgrade")
    for_version: int = Field(description="The deployment version whose event completed that command")
    stage: str
    checks: list[dict[str, Any]]
    deadline: str
    rollback: bool
    state: Literal["running", "passed", "failed"]
    results: list[CheckResult]
    rolled_back: str | None = Field(None, description="What the failure did: demote, swap-back, or null")


class Orphan(Out):
    vm_id: str
    name: str
    deployment_id: UUID
    machine: str | None
    resource_pool: str
    power: str
    reason: str


class OrphanList(Out):
    items: list[Orphan]


class RunningNow(Out):
    id: UUID
    configuration_version: int
    state: str


class MachineChanges(Out):
    added: list[str]
    removed: list[str]
    changed: dict[str, dict[str, list[Any]]] = Field(description="machine -> field -> [now, after]")


class VmAction(Out):
    machine: str
    vm_id: str | None
    action: Literal["move", "clone", "reconfigure", "rebuild", "destroy", "power-off"]
    from_pool: str | None = None
    to_pool: str | None = None
    because: list[str] | None = Field(None, description="rebuild: the fields an in-place change cannot make")


class Addresses(Out):
    ip: str | None
    macs: list[str]


class AddressChange(Out):
    machine: str
    before: Addresses | None
    after: Addresses | None
    note: str | None = None


class Preview(Out):
    """What the command would change in the stage it lands in; nothing is written."""

    action: Literal["promote", "demote", "swap", "upgrade"]
    deployment_id: UUID
    from_stage: str
    target_stage: str
    target_pool: str
    from_version: int | None = None
    to_version: int | None = None
    running_now: RunningNow | None = Field(description="What runs there now (of the same configuration)")
    machines: MachineChanges
    vms: list[VmAction]
    addresses: list[AddressChange] = Field(description="Machines whose addresses there change")
