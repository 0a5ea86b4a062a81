"""Governance commands: stop the line, freeze windows, approval decisions, and the approvals tick."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain import governance
from domain.application import Outcome, StagekeeperApplication
from domain.approval import Approval, ApprovalDesk
from domain.errors import ValidationError
from domain.freeze import FreezeCalendar, parse_window
from domain.permissions import Caller
from domain.service import Service
from domain.stopline import StopTheLine
from domain.text import check_reason


class GovernanceCommands(StagekeeperApplication):
    # -- stop the line ---------------------------------------------------------------------------
    def stop_the_line(self, actor: str, reason: object) -> Outcome[StopTheLine]:
        """Refuse every lifecycle command everywhere until lifted; `reason` is given with each refusal."""
        why = check_reason(reason)
        if not (why or "").strip():
            raise ValidationError("stopping the line needs a reason (every refusal gives it)", field="reason")

        def attempt() -> Outcome[StopTheLine]:
            line = governance.stop_line(self)
            line.pull(actor, why or "", self.clock.now().isoformat(timespec="seconds"))
            return Outcome(line, self.commit(line))

        return self.retrying(attempt)

    def lift_the_line(self, actor: str, reason: object = None) -> Outcome[StopTheLine]:
        """Let lifecycle commands through again."""
        why = check_reason(reason)

        def attempt() -> Outcome[StopTheLine]:
            line = governance.stop_line(self)
            line.lift(actor, why)
            return Outcome(line, self.commit(line))

        return self.retrying(attempt)

    def line(self) -> StopTheLine:
        return governance.stop_line(self)

    # -- freeze windows --------------------------------------------------------------------------
    def freeze_calendar(self) -> FreezeCalendar:
        return governance.calendar(self)

    def add_freeze_window(
        self, data: object, actor: str, reason: object = None, by_administrator: bool = False
    ) -> Outcome[dict[str, Any]]:
        """A window during which commands into its scope (everything, a service, a stage) are refused.
        `by_administrator`: only administrators may change or remove it (domain/changecontrol.py)."""
        why = check_reason(reason)
        window = parse_window(data)
        if by_administrator:
            window["by_administrator"] = True
        self._check_scope(window)

        def attempt() -> Outcome[dict[str, Any]]:
            found = governance.calendar(self)
            added = found.add(window, actor, why)
            return Outcome(added, self.commit(found))

        return self.retrying(attempt)

    def replace_freeze_window(
        self, window_id: str, data: object, actor: str, reason: object = None
    ) -> Outcome[dict[str, Any]]:
        """Change every field of a window (its scope stays)."""
        why = check_reason(reason)
        window = parse_window(data)

        def attempt() -> Outcome[dict[str, Any]]:
            found = governance.calendar(self)
            before = found.window(window_id)
            if (before["service_id"], before["stage"]) != (window["service_id"], window["stage"]):
                raise ValidationError("a window's scope (service_id, stage) cannot change", field="service_id")
            changed = found.replace(window_id, window, actor, why)
            return Outcome(changed, self.commit(found))

        return self.retrying(attempt)

    def remove_freeze_window(self, window_id: str, actor: str, reason: object = None) -> Outcome[dict[str, Any]]:
        why = check_reason(reason)

        def attempt() -> Outcome[dict[str, Any]]:
            found = governance.calendar(self)
            removed = found.remove(window_id, actor, why)
            return Outcome(removed, self.commit(found))

        return self.retrying(attempt)

    def _check_scope(self, window: dict[str, Any]) -> None:
        if window["service_id"] is None:
            return
        service = self.load(Service, UUID(window["service_id"]), "service")
        if window["stage"] is not None:
            window["stage"] = service.stage(window["stage"])["name"]

    # -- approvals ------------------------------------------------------------------------------
    def approval(self, approval_id: UUID) -> Approval:
        return governance.load_approval(self, approval_id)

    def open_approvals(self) -> list[Approval]:
        """Requests awaiting approval or approved and not yet carried out, oldest first."""
        ids = list(governance.desk(self).open)
        found = [self.approval(UUID(i)) for i in ids]
        return sorted(found, key=lambda a: a.created_on)

    def approve(self, approval_id: UUID, caller: Caller, reason: object = None) -> Outcome[Approval]:
        """Agree to a request (a member of its group, not its requester unless the stage allows it)."""
        why = check_reason(reason)

        def attempt() -> Outcome[Approval]:
            approval = self.approval(approval_id)
            approval.approve(caller, why)
            return Outcome(approval, self.commit(approval))

        return self.retrying(attempt)

    def reject(self, approval_id: UUID, caller: Caller, reason: object = None) -> Outcome[Approval]:
        """Refuse a request: it is closed and never carried out."""
        why = check_reason(reason)

        def attempt() -> Outcome[Approval]:
            approval = self.approval(approval_id)
            approval.reject(caller, why)
            return Outcome(approval, self.commit(approval, *self._closing(approval, caller.user)))

        return self.retrying(attempt)

    def _closing(self, approval: Approval, actor: str) -> list[ApprovalDesk]:
        found = governance.desk(self)
        found.close(approval, actor)
        return [found]

    def close_approval(self, approval_id: UUID, action: str, cause: str = "") -> Outcome[Approval]:
        """Expire or void an open request (the approvals tick; `cause` is Stagekeeper's own words)."""

        def attempt() -> Outcome[Approval]:
            approval = self.approval(approval_id)
            if action == "expire" and approval.expired_at(self.clock.now()):
                approval.expire("stagekeeper")
            elif action == "void":
                approval.void("stagekeeper", cause)
            if approval.state in ("awaiting-approval", "approved"):
                return Outcome(approval, 0)
            return Outcome(approval, self.commit(approval, *self._closing(approval, "stagekeeper")))

        return self.retrying(attempt)

    def mark_executed_writes(self, approval_id: UUID) -> list[Any]:
        """The approval's Executed event and the desk's closing, to join the command's commit."""
        approval = self.approval(approval_id)
        approval.record_executed(approval.requested_by)
        return [approval, *self._closing(approval, approval.requested_by)]
