"""Approvals, stop the line and freeze windows."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from api.responses import Out, Position, Timestamp

ApprovalState = Literal["awaiting-approval", "approved", "rejected", "expired", "voided", "executed"]


class Decision(Out):
    by: str
    reason: str | None


class Approval(Out):
    id: UUID
    kind: str = Field(description="The command asked for: promote, copy, swap, upgrade, restore")
    state: ApprovalState
    service_id: UUID
    stage: str = Field(description="The stage the command goes into")
    target_id: UUID = Field(description="The deployment (or configuration) the command acts on")
    command: dict[str, Any] = Field(description="The command's arguments as requested")
    seen: dict[str, int] = Field(description="Versions seen when it was asked; a change voids the request")
    needed: int = Field(description="Distinct approvers needed (0: a scheduled promotion only)")
    group: str | None
    requester_may_approve: bool
    expires_at: Timestamp | None
    run_at: Timestamp | None = Field(description="A scheduled promote runs then (once approved)")
    override_freeze: bool
    requested_by: str
    reason: str | None
    approvals: list[Decision]
    closed_by: str | None
    closed_reason: str | None
    version: int
    may_decide: bool = Field(description="Whether the caller belongs to the approver group")
    position: Position


class ApprovalList(Out):
    items: list[Approval]
    position: Position


class AwaitingApproval(Out):
    approval_id: UUID
    state: ApprovalState
    approval: Approval


class StopLine(Out):
    on: bool
    reason: str | None
    by: str | None
    since: Timestamp | None
    position: Position


class FreezeWindow(Out):
    id: UUID
    name: str
    service_id: UUID | None = Field(description="None: every service")
    stage: str | None = Field(description="None: every stage of the service")
    start: str = Field(description="Wall-clock time in `timezone` (first occurrence)")
    end: str
    timezone: str
    recurrence: Literal["weekly"] | None
    until: str | None
    override_group: str | None = Field(description="Members may go through with override_freeze and a reason")
    created_by: str
    by_administrator: bool = Field(False, description="Created by an administrator: only administrators change it")
    active_until: Timestamp | None = Field(description="When the occurrence in force now ends (None: not in force)")
    position: Position


class FreezeWindowList(Out):
    items: list[FreezeWindow]
    position: Position
