"""The admission gate: one call at the top of every lifecycle command.

`admit(app, kind, ...)` applies, in order: stop the line (every command, everywhere), freeze
windows (the stage the command goes into, or acts in), soak time (a promote out of a stage), then
approvals and scheduling (a promote, copy, swap, upgrade or restore into a stage whose policy asks
for approvals; a promote with `at`). Passing the first three lets the command go on; the last one
files an Approval and raises AwaitingApprovalError, which the API answers with 202 and the approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain.application import Outcome, StagekeeperApplication
from domain.approval import Approval, ApprovalDesk
from domain.configuration import Configuration
from domain.deployment import Deployment
from domain.errors import ConflictError, PermissionDeniedError, StagekeeperError, ValidationError
from domain.freeze import FREEZE_CALENDAR_ID, FreezeCalendar, describe
from domain.gate import GateContext
from domain.permissions import Caller, can_operate
from domain.service import Service
from domain.stopline import STOP_LINE_ID, StopTheLine
from domain.values import normalise_key

KINDS = (
    "deploy", "promote", "demote", "copy", "swap", "swap-back", "upgrade", "undeploy", "retry", "power",
    "snapshot", "revert", "restore", "rebalance",
)  # fmt: skip
NEEDS_APPROVAL = ("promote", "copy", "swap", "upgrade", "restore")
# Commands whose target is a configuration (the others act on a deployment).
ON_CONFIGURATION = ("deploy", "restore")
MAX_SCHEDULE_DAYS = 366


class StoppedLineError(ConflictError):
    """The line is stopped: every lifecycle command is refused until it is lifted."""

    code = "line_stopped"


class FrozenError(ConflictError):
    """The stage is inside a freeze window."""

    code = "frozen"


class SoakingError(ConflictError):
    """The deployment has not run in its stage for the stage's soak time yet."""

    code = "soaking"


class AwaitingApprovalError(StagekeeperError):
    """Not a failure: the command became an approval request (answered 202 with it)."""

    code = "awaiting_approval"

    def __init__(self, approval: Approval, position: int) -> None:
        super().__init__(f"{approval.kind} awaits approval {approval.id} ({approval.state})")
        self.approval = approval
        self.position = position


@dataclass(frozen=True)
class Subject:
    """What a command concerns: its service, the stage it goes into or acts in, and what was seen."""

    service: Service
    stage: dict[str, Any]
    seen: dict[str, int]
    deployment: Deployment | None


def context(app: StagekeeperApplication) -> GateContext:
    return app.gate_context.get() or GateContext()


def admit(
    app: StagekeeperApplication,
    kind: str,
    target_id: UUID,
    actor: str,
    reason: str | None,
    stage: object = None,
    **args: Any,
) -> None:
    """Let a lifecycle command go on, or refuse it (409), or turn it into an approval request."""
    assert kind in KINDS, kind
    gate = context(app)
    check_line(app)
    subject = resolve(app, kind, target_id, stage, args)
    now = app.clock.now()
    approval = load_approval(app, gate.approval_id) if gate.approval_id is not None else None
    override = approval.override_freeze if approval is not None else gate.override_freeze
    groups = approval.requester_groups if approval is not None else sorted(gate.caller.groups) if gate.caller else []
    run_at = None if approval is not None else scheduled_time(gate.at, kind, now)
    deferred = approval is None and (run_at is not None or approvals_needed(kind, subject.stage) > 0)
    # A scheduled promote meets the windows in force when it runs (it is checked again then).
    overridden = check_freeze(app, subject, run_at or now, override, groups, reason)
    if kind == "promote" and subject.deployment is not None:
        check_soak(app, subject.service, subject.deployment, run_at or now)
    if overridden and not deferred:
        anchors = {subject.service.id, target_id}
        gate.join(anchors, lambda: override_writes(app, overridden, kind, target_id, subject, actor, reason))
    if deferred:
        filed = file_request(app, kind, target_id, subject, actor, reason, args, run_at, override, groups, now)
        raise AwaitingApprovalError(filed.value, filed.position)


def check_line(app: StagekeeperApplication) -> None:
    line = stop_line(app)
    if line.on:
        raise StoppedLineError(f"the line is stopped (by {line.by} since {line.since}): {line.reason}")


def stop_line(app: StagekeeperApplication) -> StopTheLine:
    try:
        found: Aggregate = app.repository.get(STOP_LINE_ID)
    except AggregateNotFoundError:
        return StopTheLine()
    assert isinstance(found, StopTheLine)
    return found


def calendar(app: StagekeeperApplication) -> FreezeCalendar:
    try:
        found: Aggregate = app.repository.get(FREEZE_CALENDAR_ID)
    except AggregateNotFoundError:
        return FreezeCalendar()
    assert isinstance(found, FreezeCalendar)
    return found


def desk(app: StagekeeperApplication) -> ApprovalDesk:
    try:
        found: Aggregate = app.repository.get(ApprovalDesk.create_id())
    except AggregateNotFoundError:
        return ApprovalDesk()
    assert isinstance(found, ApprovalDesk)
    return found


def load_approval(app: StagekeeperApplication, approval_id: UUID) -> Approval:
    return app.load(Approval, approval_id, "approval request")


def resolve(app: StagekeeperApplication, kind: str, target_id: UUID, stage: object, args: dict[str, Any]) -> Subject:
    """The service and stage a command concerns (lookups fail as the command itself would)."""
    if kind in ON_CONFIGURATION:
        configuration = app.load(Configuration, target_id, "configuration")
        service = app.load(Service, configuration.service_id, "service")
        seen = {"configuration": configuration.version, "service": service.definition_version}
        return Subject(service, service.stage(str(stage)), seen, None)
    deployment = app.load(Deployment, target_id, "deployment")
    service = app.load(Service, deployment.service_id, "service")
    latest = app.load(Configuration, deployment.configuration_id, "configuration")
    seen = {"deployment": deployment.version, "configuration": latest.version, "service": service.definition_version}
    if kind == "promote":
        target = service.next_stage(deployment.stage, +1)
    elif kind == "demote":
        target = service.next_stage(deployment.stage, -1)
    elif kind == "copy":
        target = service.stage(str(stage))
    elif kind == "swap":
        replaced = app.load(Deployment, UUID(str(args["replaces"])), "replaces")
        seen["replaces"] = replaced.version
        target = service.stage(replaced.stage)
    else:
        target = service.stage(deployment.stage)
    return Subject(service, target, seen, deployment)


def scheduled_time(at: str | None, kind: str, now: datetime) -> datetime | None:
    if at is None:
        return None
    if kind != "promote":
        raise ValidationError("only a promote may be scheduled (at)", field="at")
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise ValidationError("at must be an ISO 8601 time with its offset, e.g. 2026-12-01T22:00:00+01:00",
                              field="at") from None  # fmt: skip
    if when.tzinfo is None:
        raise ValidationError("at must carry its UTC offset, e.g. 2026-12-01T22:00:00+01:00", field="at")
    if when <= now:
        raise ValidationError(f"at must be in the future (it is {now.isoformat(timespec='seconds')} now)", field="at")
    if when - now > timedelta(days=MAX_SCHEDULE_DAYS):
        raise ValidationError(f"at must be within {MAX_SCHEDULE_DAYS} days", field="at")
    return when.astimezone(UTC)


def approvals_needed(kind: str, stage: dict[str, Any]) -> int:
    policy = stage.get("approvals") or {}
    return int(policy.get("required", 0)) if kind in NEEDS_APPROVAL else 0


def check_freeze(
    app: StagekeeperApplication,
    subject: Subject,
    now: datetime,
    override: bool,
    groups: list[str],
    reason: str | None,
) -> list[str]:
    """Refuse a command into a frozen stage, unless overridden as the window allows; the ids of the
    windows overridden."""
    active = calendar(app).active(subject.service.id, subject.stage["name"], now)
    if not active:
        return []
    where = f"stage '{subject.stage['name']}' of '{subject.service.name}'"
    window, occurrence = active[0]
    if not override:
        raise FrozenError(f"{where} is frozen: {describe(window, occurrence)}", field="override_freeze")
    if not (reason or "").strip():
        raise ValidationError("overriding a freeze window needs a reason", field="reason")
    mine = {normalise_key(g) for g in groups}
    for window, occurrence in active:
        group = window.get("override_group")
        if group is None:
            raise FrozenError(f"{where} is frozen and {describe(window, occurrence)} allows no override",
                              field="override_freeze")  # fmt: skip
        if normalise_key(group) not in mine:
            raise PermissionDeniedError(f"only members of '{group}' may override {describe(window, occurrence)}")
    return [window["id"] for window, _ in active]


def override_writes(
    app: StagekeeperApplication,
    windows: list[str],
    kind: str,
    target_id: UUID,
    subject: Subject,
    actor: str,
    reason: str | None,
) -> list[Aggregate]:
    found = calendar(app)
    for window_id in windows:
        if window_id in found.windows:
            found.record_override(window_id, kind, target_id, subject.stage["name"], actor, reason)
    return [found]


# -- soak time --------------------------------------------------------------------------------
def arrival(events: list[tuple[str, datetime]]) -> datetime | None:
    """When a deployment started running in its current stage, from its history (event name, time):
    the last move or swap into it, or the first time it was deployed there."""
    arrived: datetime | None = None
    for name, at in events:
        if name in ("Moved", "Swapped", "Captured") or (name == "Deployed" and arrived is None):
            arrived = at
        elif name == "Requested":
            arrived = None
    return arrived


def soak_ends(arrived: datetime | None, soak_seconds: int) -> datetime | None:
    """When a deployment that arrived at `arrived` may leave (None: it is not running there yet)."""
    return None if arrived is None else arrived + timedelta(seconds=soak_seconds)


def check_soak(app: StagekeeperApplication, service: Service, deployment: Deployment, when: datetime) -> None:
    soak = int(service.stage(deployment.stage).get("soak_seconds") or 0)
    if not soak:
        return
    history = [(type(e).__name__, e.timestamp) for e in app.repository.event_store.get(deployment.id)]  # type: ignore[attr-defined]
    ends = soak_ends(arrival(history), soak)
    if ends is None or when < ends:
        since = "has not run there yet" if ends is None else f"may leave from {ends.isoformat(timespec='seconds')}"
        raise SoakingError(
            f"stage '{deployment.stage}' has a soak time of {soak} s: deployment {deployment.id} {since}",
            field="soak_seconds",
        )


# -- approval requests --------------------------------------------------------------------------
def file_request(
    app: StagekeeperApplication,
    kind: str,
    target_id: UUID,
    subject: Subject,
    actor: str,
    reason: str | None,
    args: dict[str, Any],
    run_at: datetime | None,
    override: bool,
    groups: list[str],
    now: datetime,
) -> Outcome[Approval]:
    policy = subject.stage.get("approvals") or {}
    needed = approvals_needed(kind, subject.stage)
    expiry = policy.get("expiry_hours")

    def attempt() -> Outcome[Approval]:
        approval = Approval(
            kind=kind,
            service_id=subject.service.id,
            stage=subject.stage["name"],
            target_id=target_id,
            command={"stage": subject.stage["name"], **{k: jsonable(v) for k, v in args.items()}},
            seen=subject.seen,
            needed=needed,
            group=policy.get("group") if needed else None,
            requester_may_approve=bool(policy.get("requester_may_approve", False)),
            expires_at=(now + timedelta(hours=int(expiry))).isoformat() if needed and expiry else None,
            run_at=run_at.isoformat() if run_at is not None else None,
            override_freeze=override,
            requester_groups=groups,
            actor=actor,
            reason=reason,
            requester_granted=requester_granted(app, subject, actor, groups),
        )
        the_desk = desk(app)
        the_desk.file(approval)
        return Outcome(approval, app.commit(approval, the_desk))

    return app.retrying(attempt)


def requester_granted(app: StagekeeperApplication, subject: Subject, actor: str, groups: list[str]) -> bool:
    """Whether the requester operates the stage through the service's grants (an administrator's
    rights, from the directory, are not re-checked; see domain/processes/approvals.py lost_role)."""
    caller = context(app).caller
    if caller is not None and caller.is_admin:
        return False
    return can_operate(list(subject.service.grants.values()), Caller(actor, frozenset(groups)), subject.stage)


def jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, UUID) else value
