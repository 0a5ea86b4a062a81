"""The approvals process: expire, void, and carry out approval requests (and scheduled promotions).

`tick(app)` runs on the process manager's thread, on every wake and poll. A request that is
approved and due is carried out as its requester, with the approvers and the approval's id in the
reason; its Executed event joins the command's own commit, so two ticks (or two processes) racing
on it carry it out once: the loser's commit fails on the approval's version, it re-reads and finds
the request executed. A request whose deployment, configuration or service changed since it was
asked is voided; one refused by stop-the-line or a freeze window waits for them to end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from domain.approval import APPROVED, AWAITING, Approval
from domain.configuration import Configuration
from domain.deployment import Deployment
from domain.errors import NotFoundError, StagekeeperError
from domain.gate import GateContext
from domain.governance import FrozenError, StoppedLineError
from domain.permissions import Caller, can_operate
from domain.service import Service
from domain.stagekeeper import Stagekeeper
from domain.text import MAX_REASON

log = logging.getLogger(__name__)
ACTOR = "stagekeeper"

Executor = Callable[[Stagekeeper, Approval, str], Any]


def _promote(app: Stagekeeper, approval: Approval, reason: str) -> Any:
    return app.promote(approval.target_id, actor=approval.requested_by, reason=reason)


def _copy(app: Stagekeeper, approval: Approval, reason: str) -> Any:
    command = approval.command
    return app.copy_deployment(
        approval.target_id, command["stage"], actor=approval.requested_by, reason=reason,
        fence=command.get("fence", False),
    )  # fmt: skip


def _swap(app: Stagekeeper, approval: Approval, reason: str) -> Any:
    command = approval.command
    return app.swap_deployment(
        approval.target_id,
        UUID(command["replaces"]),
        actor=approval.requested_by,
        keep_previous=command.get("keep_previous", True),
        reason=reason,
        destroy_vms=command.get("destroy_vms"),
    )


def _upgrade(app: Stagekeeper, approval: Approval, reason: str) -> Any:
    return app.upgrade_deployment(approval.target_id, approval.command["version"], actor=approval.requested_by,
                                  reason=reason)  # fmt: skip


# Restore from an archive registers its executor here when it is wired to the gate.
EXECUTORS: dict[str, Executor] = {"promote": _promote, "copy": _copy, "swap": _swap, "upgrade": _upgrade}


def reason_for(approval: Approval) -> str:
    """The requester's reason, then who approved it (kept within the reason's length)."""
    note = f"[approval {approval.id}"
    note += f", approved by {', '.join(approval.approvers)}]" if approval.approvers else ", scheduled]"
    original = approval.reason or ""
    room = MAX_REASON - len(note) - 1
    if len(original) > room:
        original = original[: max(0, room - 1)] + "…"
    return f"{original}\n{note}" if original else note


def changed(app: Stagekeeper, approval: Approval) -> str | None:
    """What changed since the request was asked (None: nothing)."""
    seen = approval.seen
    try:
        if "deployment" in seen:
            deployment = app.load(Deployment, approval.target_id, "deployment")
            if deployment.version != seen["deployment"]:
                return f"deployment {deployment.id} changed since the request (now {deployment.state})"
            configuration_id = deployment.configuration_id
        else:
            configuration_id = approval.target_id
        if "replaces" in seen:
            replaced = app.load(Deployment, UUID(approval.command["replaces"]), "replaces")
            if replaced.version != seen["replaces"]:
                return f"deployment {replaced.id} (replaced) changed since the request"
        configuration = app.load(Configuration, configuration_id, "configuration")
        if configuration.version != seen["configuration"]:
            return (
                f"configuration '{configuration.name}' changed since the request (now version {configuration.version})"
            )
        service = app.load(Service, approval.service_id, "service")
        if service.definition_version != seen["service"]:
            return f"service '{service.name}' changed since the request (its stages or policies)"
    except NotFoundError as error:
        return error.message
    return None


def lost_role(app: Stagekeeper, approval: Approval) -> str | None:
    """Why the requester may no longer run the request (None: they still may). A requester who
    operated the stage through the service's grants must still do so, with the groups recorded when
    they asked (review finding 10). Approvers are eligible by membership of the policy's group, checked
    when they approve; a change of the policy (another group) voids the request through changed()."""
    if not getattr(approval, "requester_granted", False):
        return None
    try:
        service = app.load(Service, approval.service_id, "service")
        stage = service.stage(approval.stage)
    except NotFoundError as error:
        return error.message
    caller = Caller(approval.requested_by, frozenset(approval.requester_groups))
    if can_operate(list(service.grants.values()), caller, stage):
        return None
    return f"{approval.requested_by} no longer holds a role that may {approval.kind} into stage '{stage['name']}'"


def tick(app: Stagekeeper) -> int:
    """Expire, void and carry out what is due; the number of requests acted on."""
    acted = 0
    for approval in app.open_approvals():
        now = app.clock.now()
        if approval.expired_at(now):
            app.close_approval(approval.id, "expire")
            acted += 1
            continue
        if approval.state not in (AWAITING, APPROVED):
            continue
        why = changed(app, approval) or lost_role(app, approval)
        if why is not None:
            app.close_approval(approval.id, "void", why)
            acted += 1
        elif approval.due(now):
            acted += carry_out(app, approval.id)
    return acted


def carry_out(app: Stagekeeper, approval_id: UUID) -> int:
    approval = app.approval(approval_id)
    if approval.state != APPROVED:
        return 0
    lost = lost_role(app, approval)
    if lost is not None:
        app.close_approval(approval.id, "void", lost)
        return 1
    executor = EXECUTORS.get(approval.kind)
    if executor is None:
        app.close_approval(approval.id, "void", f"no way to carry out a {approval.kind} request yet")
        return 1
    gate = GateContext(approval_id=approval.id)
    gate.join({approval.target_id, approval.service_id}, lambda: app.mark_executed_writes(approval_id))
    token = app.gate_context.set(gate)
    try:
        executor(app, approval, reason_for(approval))
        if gate.joins:  # the command wrote nothing the request could join: say it ran all the same
            app.commit(*app.mark_executed_writes(approval_id))
    except (StoppedLineError, FrozenError) as error:
        log.info("approval %s waits: %s", approval.id, error.message)
        return 0
    except StagekeeperError as error:
        # Refused now (another change won, the stage is gone...): closed with the reason, never retried.
        app.close_approval(approval.id, "void", f"could not be carried out: {error.message}")
    finally:
        app.gate_context.reset(token)
    return 1


class ApprovalsTick:
    """A follower-shaped step for the process manager's thread (runs on every wake and poll): it
    follows the clock, not the log, so it has no position of its own."""

    name = "approvals"

    def __init__(self, app: Stagekeeper, interval: float = 1.0) -> None:
        self.app = app
        # The thread wakes on every write and poll; sweeping the open requests that often is waste.
        self.interval = interval
        self._last = -interval

    def position(self) -> int:
        return 0

    def catch_up(self, until: int | None = None) -> int:
        if time.monotonic() - self._last < self.interval:
            return 0
        self._last = time.monotonic()
        return tick(self.app)

    def sweep(self) -> int:
        """One sweep now, whenever the last one was (tests and CLI tools)."""
        self._last = time.monotonic()
        return tick(self.app)
