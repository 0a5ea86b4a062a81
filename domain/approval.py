"""Approval requests: a lifecycle command into a stage that needs approvals, held until enough
distinct members of the stage's approver group agree (or until its time, for a scheduled promote).

The request keeps the command as it was asked and the versions its requester saw (deployment,
configuration, service): approvers approve what was seen, so a request whose objects changed
since is voided rather than carried out. The process manager carries an approved request out as
the requester, once: the Executed event is written in the same commit as the command's own events.
The approval desk lists the open requests (one aggregate, so listing and the scheduler read one
object; closed requests leave it and stay readable by id and in the audit log).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import ConflictError, PermissionDeniedError
from domain.permissions import Caller
from domain.values import normalise_key

APPROVAL_DESK_ID = uuid5(NAMESPACE_URL, "https://stagekeeper.invalid/approval-desk")
MAX_OPEN = 1000

AWAITING = "awaiting-approval"
APPROVED = "approved"
REJECTED = "rejected"
EXPIRED = "expired"
VOIDED = "voided"
EXECUTED = "executed"
STATES = (AWAITING, APPROVED, REJECTED, EXPIRED, VOIDED, EXECUTED)
OPEN = (AWAITING, APPROVED)


class Approval(Aggregate):
    TOPIC = "stagekeeper:Approval"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:Approval.Created"

    @event("Requested", topic="stagekeeper:Approval.Requested")
    def __init__(
        self,
        kind: str,
        service_id: UUID,
        stage: str,
        target_id: UUID,
        command: dict[str, Any],
        seen: dict[str, int],
        needed: int,
        group: str | None,
        requester_may_approve: bool,
        expires_at: str | None,
        run_at: str | None,
        override_freeze: bool,
        requester_groups: list[str],
        actor: str,
        reason: str | None,
        requester_granted: bool = False,
    ) -> None:
        self.kind = kind
        self.service_id = service_id
        self.stage = stage
        self.target_id = target_id
        self.command = dict(command)
        self.seen = dict(seen)
        self.needed = needed
        self.group = group
        self.requester_may_approve = requester_may_approve
        self.expires_at = expires_at
        self.run_at = run_at
        self.override_freeze = override_freeze
        self.requester_groups = list(requester_groups)
        self.requested_by = actor
        self.reason = reason
        # The requester operated the stage through the service's grants (not as an administrator or an
        # in-process caller): re-checked against the grants when the request is carried out.
        self.requester_granted = requester_granted
        self.approvals: list[dict[str, Any]] = []
        self.closed: str | None = None
        self.closed_by: str | None = None
        self.closed_reason: str | None = None

    @property
    def state(self) -> str:
        if self.closed is not None:
            return self.closed
        return APPROVED if len(self.approvals) >= self.needed else AWAITING

    @property
    def approvers(self) -> list[str]:
        return [a["by"] for a in self.approvals]

    def due(self, now: datetime) -> bool:
        return self.state == APPROVED and (self.run_at is None or datetime.fromisoformat(self.run_at) <= now)

    def expired_at(self, now: datetime) -> bool:
        return self.state == AWAITING and self.expires_at is not None and datetime.fromisoformat(self.expires_at) <= now

    def may_approve(self, caller: Caller) -> bool:
        """Whether `caller` is one of the approvers this request asks for (membership, not yet the rules)."""
        return self.group is not None and normalise_key(self.group) in {normalise_key(g) for g in caller.groups}

    def _check_decider(self, caller: Caller, action: str) -> None:
        if self.state != AWAITING:
            raise ConflictError(f"approval {self.id} is {self.state}: nothing to {action}", field="approval_id")
        if not self.may_approve(caller):
            raise PermissionDeniedError(
                f"{caller.user} may not {action} approval {self.id}: approvers must belong to group '{self.group}'"
            )
        if normalise_key(caller.user) == normalise_key(self.requested_by) and not self.requester_may_approve:
            raise PermissionDeniedError(
                f"{caller.user} asked for this {self.kind} and may not {action} it (stage '{self.stage}' "
                "does not let requesters approve their own requests)"
            )
        if normalise_key(caller.user) in {normalise_key(u) for u in self.approvers}:
            raise ConflictError(f"{caller.user} has approved this request already", field="approval_id")

    def approve(self, caller: Caller, reason: str | None) -> None:
        self._check_decider(caller, "approve")
        self._approved(actor=caller.user, reason=reason)

    @event("Approved", topic="stagekeeper:Approval.Approved")
    def _approved(self, actor: str, reason: str | None) -> None:
        self.approvals.append({"by": actor, "reason": reason})

    def reject(self, caller: Caller, reason: str | None) -> None:
        self._check_decider(caller, "reject")
        self._rejected(actor=caller.user, reason=reason)

    @event("Rejected", topic="stagekeeper:Approval.Rejected")
    def _rejected(self, actor: str, reason: str | None) -> None:
        self._close(REJECTED, actor, reason)

    def expire(self, actor: str) -> None:
        self._expired(actor=actor, reason=f"nobody decided before {self.expires_at}")

    @event("Expired", topic="stagekeeper:Approval.Expired")
    def _expired(self, actor: str, reason: str | None) -> None:
        self._close(EXPIRED, actor, reason)

    def void(self, actor: str, reason: str) -> None:
        if self.state in OPEN:
            self._voided(actor=actor, reason=reason)

    @event("Voided", topic="stagekeeper:Approval.Voided")
    def _voided(self, actor: str, reason: str | None) -> None:
        self._close(VOIDED, actor, reason)

    def record_executed(self, actor: str) -> None:
        if self.state != APPROVED:
            raise ConflictError(f"approval {self.id} is {self.state}: it cannot be carried out", field="approval_id")
        self._executed(approvers=self.approvers, actor=actor, reason=self.reason)

    @event("Executed", topic="stagekeeper:Approval.Executed")
    def _executed(self, approvers: list[str], actor: str, reason: str | None) -> None:
        self._close(EXECUTED, actor, reason)

    def _close(self, state: str, actor: str, reason: str | None) -> None:
        self.closed, self.closed_by, self.closed_reason = state, actor, reason

    def view(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "kind": self.kind,
            "state": self.state,
            "service_id": str(self.service_id),
            "stage": self.stage,
            "target_id": str(self.target_id),
            "command": self.command,
            "seen": self.seen,
            "needed": self.needed,
            "group": self.group,
            "requester_may_approve": self.requester_may_approve,
            "expires_at": self.expires_at,
            "run_at": self.run_at,
            "override_freeze": self.override_freeze,
            "requested_by": self.requested_by,
            "reason": self.reason,
            "approvals": list(self.approvals),
            "closed_by": self.closed_by,
            "closed_reason": self.closed_reason,
            "version": self.version,
        }


class ApprovalDesk(Aggregate):
    """The open approval requests (awaiting approval, or approved and not yet carried out)."""

    TOPIC = "stagekeeper:ApprovalDesk"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:ApprovalDesk.Created"

    @staticmethod
    def create_id() -> UUID:
        return APPROVAL_DESK_ID

    @event("Opened", topic="stagekeeper:ApprovalDesk.Opened")
    def __init__(self) -> None:
        self.open: dict[str, str] = {}  # approval id -> service id

    def file(self, approval: Approval) -> None:
        if len(self.open) >= MAX_OPEN:
            raise ConflictError(f"{MAX_OPEN} approval requests are open already; decide some first")
        self._filed(approval_id=approval.id, service_id=approval.service_id, actor=approval.requested_by, reason=None)

    @event("Filed", topic="stagekeeper:ApprovalDesk.Filed")
    def _filed(self, approval_id: UUID, service_id: UUID, actor: str, reason: str | None) -> None:
        self.open[str(approval_id)] = str(service_id)

    def close(self, approval: Approval, actor: str) -> None:
        if str(approval.id) in self.open:
            self._closed(approval_id=approval.id, state=approval.state, actor=actor, reason=None)

    @event("Closed", topic="stagekeeper:ApprovalDesk.Closed")
    def _closed(self, approval_id: UUID, state: str, actor: str, reason: str | None) -> None:
        self.open.pop(str(approval_id), None)
