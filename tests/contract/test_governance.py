"""Approvals, soak time, scheduled promotions, freeze windows and stop the line, on every persistence."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.approval import APPROVED, AWAITING, EXECUTED, VOIDED
from domain.errors import ConflictError, PermissionDeniedError
from domain.freeze import FREEZE_CALENDAR_ID
from domain.gate import GateContext
from domain.governance import AwaitingApprovalError, FrozenError, SoakingError, StoppedLineError
from domain.permissions import Caller
from domain.processes.approvals import carry_out, tick
from projections.audit_queries import AuditFilter
from projections.summaries_governance import GOVERNANCE_SUMMARIES
from tests.support import THREE_TIER, FixedClock, runtime_for, stages

CAB = "cn=cab,ou=groups,dc=example"


@dataclass
class World:
    runtime: Runtime
    clock: FixedClock
    service_id: UUID
    configuration_id: UUID


@pytest.fixture
def world(database_url: str, vcenter: SimulatedVCenter) -> Iterator[World]:
    # Soak time is measured from the events' own times: the clock starts at the real time.
    clock = FixedClock(datetime.now(UTC))
    runtime = runtime_for(database_url, vcenter=vcenter)
    runtime.app.clock = clock
    runtime.clock = clock
    app = runtime.app
    app.import_templates(None, True, actor="admin")
    service = app.register_service("payroll", "", stages("int", "test", "prod"), actor="admin").value
    configuration = app.create_configuration(service.id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a")
    yield World(runtime, clock, service.id, configuration.value.id)
    runtime.close()


def deployed(world: World, stage: str = "int") -> UUID:
    deployment_id = world.runtime.app.deploy(world.configuration_id, stage, actor="alice", reason="r7").value.id
    world.runtime.catch_up()
    return deployment_id


def needs_approvals(world: World, stage: str = "test", required: int = 2) -> None:
    world.runtime.app.update_stage(
        world.service_id, stage, {"approvals": {"required": required, "group": CAB, "expiry_hours": 24}}, actor="a"
    )


def requested(world: World, deployment_id: UUID, **gate: object) -> UUID:
    app = world.runtime.app
    token = app.gate_context.set(GateContext(**gate))  # type: ignore[arg-type]
    try:
        with pytest.raises(AwaitingApprovalError) as held:
            app.promote(deployment_id, actor="alice", reason="release 7")
    finally:
        app.gate_context.reset(token)
    return held.value.approval.id


def member(user: str) -> Caller:
    return Caller(user, frozenset({CAB.upper()}))


def audit(world: World, event_type: str) -> list[dict[str, object]]:
    world.runtime.catch_up()
    rows, _ = world.runtime.audit.page(AuditFilter(event_type=event_type), None, 100)
    return [dict(r) for r in rows]


def test_two_approvers_from_the_group_and_the_promote_runs_once(world: World) -> None:
    app = world.runtime.app
    needs_approvals(world)
    deployment_id = deployed(world)
    approval_id = requested(world, deployment_id)
    assert app.deployment(deployment_id).state == "deployed"  # nothing moved yet
    with pytest.raises(PermissionDeniedError, match="may not approve"):
        app.approve(approval_id, member("alice"), "mine")  # self-approval
    with pytest.raises(PermissionDeniedError, match="must belong to group"):
        app.approve(approval_id, Caller("mallory", frozenset({"cn=devs"})), "me too")
    app.approve(approval_id, member("bob"), "tests green")
    assert tick(app) == 0
    assert app.approval(approval_id).state == AWAITING
    app.approve(approval_id, member("carol"), "ok for prod")
    assert app.approval(approval_id).state == APPROVED
    # Two process managers race to carry it out: one wins, the other finds it done.
    results: list[int] = []
    racers = [threading.Thread(target=lambda: results.append(carry_out(app, approval_id))) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert app.approval(approval_id).state == EXECUTED
    world.runtime.catch_up()
    deployment = app.deployment(deployment_id)
    assert (deployment.stage, deployment.state) == ("test", "deployed")
    moves = [e for e in app.repository.event_store.get(deployment_id) if type(e).__name__ == "MoveRequested"]
    assert len(moves) == 1
    assert moves[0].actor == "alice"  # type: ignore[attr-defined]
    assert "approved by bob, carol" in moves[0].reason  # type: ignore[attr-defined]
    executed = audit(world, "Approval.Executed")
    assert len(executed) == 1
    assert "approved by bob, carol" in str(executed[0]["summary"])
    assert app.open_approvals() == []


def test_a_request_is_voided_when_the_configuration_changes_before_it_is_approved(world: World) -> None:
    app = world.runtime.app
    needs_approvals(world, required=1)
    deployment_id = deployed(world)
    approval_id = requested(world, deployment_id)
    app.add_network(world.configuration_id, {"name": "back"}, actor="dave", reason="new tier")
    assert tick(app) == 1
    approval = app.approval(approval_id)
    assert approval.state == VOIDED
    assert "configuration 'p3' changed" in (approval.closed_reason or "")
    with pytest.raises(ConflictError, match="voided"):
        app.approve(approval_id, member("bob"), "too late")
    assert app.deployment(deployment_id).stage == "int"


def test_an_undecided_request_expires(world: World) -> None:
    app = world.runtime.app
    needs_approvals(world, required=1)
    approval_id = requested(world, deployed(world))
    world.clock.advance(hours=25)
    tick(app)
    assert app.approval(approval_id).state == "expired"


def test_a_freeze_window_refuses_a_promote_and_an_override_goes_through_with_its_reason(world: World) -> None:
    app = world.runtime.app
    deployment_id = deployed(world)
    start = world.clock.now() + timedelta(hours=1)
    app.add_freeze_window(
        {
            "name": "release freeze",
            "service_id": str(world.service_id),
            "stage": "test",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=2)).isoformat(),
            "override_group": "hotfixers",
        },
        actor="admin",
    )
    app.promote(deployment_id, actor="alice")  # before the window
    world.runtime.catch_up()
    app.demote(deployment_id, actor="alice")
    world.runtime.catch_up()
    world.clock.advance(hours=2)
    with pytest.raises(FrozenError, match="release freeze") as frozen:
        app.promote(deployment_id, actor="alice", reason="again")
    ends = (start + timedelta(hours=2)).isoformat(timespec="minutes")
    assert ends in frozen.value.message
    outsider = GateContext(caller=Caller("alice", frozenset({"devs"})), override_freeze=True)
    token = app.gate_context.set(outsider)
    with pytest.raises(PermissionDeniedError, match="hotfixers"):
        app.promote(deployment_id, actor="alice", reason="hotfix 12")
    app.gate_context.reset(token)
    token = app.gate_context.set(GateContext(caller=Caller("hank", frozenset({"HotFixers"})), override_freeze=True))
    try:
        app.promote(deployment_id, actor="hank", reason="hotfix for incident 12")
    finally:
        app.gate_context.reset(token)
    world.runtime.catch_up()
    assert app.deployment(deployment_id).stage == "test"
    overrides = audit(world, "FreezeCalendar.Overridden")
    assert [r["actor"] for r in overrides] == ["hank"]
    assert "hotfix for incident 12" in str(overrides[0]["summary"])
    events = list(app.repository.event_store.get(FREEZE_CALENDAR_ID))
    assert type(events[-1]).__name__ == "Overridden"


def test_stop_the_line_refuses_every_lifecycle_command_with_its_reason(world: World) -> None:
    app = world.runtime.app
    deployment_id = deployed(world)
    app.stop_the_line("admin", "incident 42: storage array degraded")
    commands: list[Callable[[], object]] = [
        lambda: app.deploy(world.configuration_id, "int", actor="alice"),
        lambda: app.promote(deployment_id, actor="alice"),
        lambda: app.undeploy(deployment_id, actor="alice"),
        lambda: app.snapshot_deployment(deployment_id, "before", actor="alice"),
        lambda: app.power_deployment(deployment_id, "off", actor="alice"),
    ]
    for command in commands:
        with pytest.raises(StoppedLineError, match="incident 42"):
            command()
    with pytest.raises(ConflictError, match="already stopped"):
        app.stop_the_line("admin", "again")
    app.lift_the_line("admin", "array healthy")
    app.promote(deployment_id, actor="alice")
    assert [r["actor"] for r in audit(world, "StopTheLine.Started")] == ["admin"]
    assert len(audit(world, "StopTheLine.Lifted")) == 1


def test_the_gate_applies_stop_the_line_then_freeze_then_soak_then_approvals(world: World) -> None:
    app = world.runtime.app
    needs_approvals(world)
    app.update_stage(world.service_id, "int", {"soak_seconds": 3600}, actor="a")
    deployment_id = deployed(world)
    now = world.clock.now()
    app.add_freeze_window(
        {
            "name": "all",
            "start": (now - timedelta(minutes=1)).isoformat(),
            "end": (now + timedelta(minutes=30)).isoformat(),
        },
        actor="admin",
    )
    app.stop_the_line("admin", "incident")
    with pytest.raises(StoppedLineError):
        app.promote(deployment_id, actor="alice")
    app.lift_the_line("admin")
    with pytest.raises(FrozenError):
        app.promote(deployment_id, actor="alice")
    world.clock.advance(minutes=31)
    with pytest.raises(SoakingError, match="may leave from"):
        app.promote(deployment_id, actor="alice")
    assert app.open_approvals() == []  # nothing was filed while refused
    world.clock.advance(minutes=30)
    requested(world, deployment_id)


def test_a_scheduled_promote_runs_at_its_time_and_is_cancelled_if_the_deployment_changes(world: World) -> None:
    app = world.runtime.app
    first, second = deployed(world), deployed(world)
    at = (world.clock.now() + timedelta(hours=2)).astimezone().isoformat()
    first_request = requested(world, first, at=at)
    second_request = requested(world, second, at=at)
    assert app.approval(first_request).state == APPROVED  # no approvals needed: only its time
    app.snapshot_deployment(second, "before", actor="bob")
    world.runtime.catch_up()
    assert app.approval(second_request).state == VOIDED
    world.clock.advance(hours=1)
    tick(app)
    assert app.deployment(first).stage == "int"
    world.clock.advance(hours=1)
    world.runtime.catch_up()
    world.runtime.catch_up()
    assert app.approval(first_request).state == EXECUTED
    assert (app.deployment(first).stage, app.deployment(second).stage) == ("test", "int")


def test_a_promote_scheduled_after_a_freeze_is_accepted_and_one_inside_it_refused(world: World) -> None:
    app = world.runtime.app
    deployment_id = deployed(world)
    now = world.clock.now()
    window = {
        "name": "night",
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=3)).isoformat(),
    }
    app.add_freeze_window(window, actor="admin")
    with pytest.raises(FrozenError, match="night"):
        requested(world, deployment_id, at=(now + timedelta(hours=2)).isoformat())
    approval_id = requested(world, deployment_id, at=(now + timedelta(hours=4)).isoformat())
    world.clock.advance(hours=4, minutes=1)
    world.runtime.catch_up()
    world.runtime.catch_up()
    assert app.approval(approval_id).state == EXECUTED
    assert app.deployment(deployment_id).stage == "test"


def test_every_governance_event_is_audited_with_its_own_summary(world: World) -> None:
    app = world.runtime.app
    needs_approvals(world, required=1)
    deployment_id = deployed(world)
    rejected = requested(world, deployment_id)
    app.reject(rejected, member("bob"), "not this week")
    voided = requested(world, deployment_id)
    app.add_network(world.configuration_id, {"name": "back"}, actor="dave")
    tick(app)
    expired = requested(world, deployment_id)
    world.clock.advance(hours=25)
    tick(app)
    executed = requested(world, deployment_id)
    app.approve(executed, member("bob"), "fine")
    tick(app)
    now = world.clock.now()
    start, end = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    window = {"name": "w", "start": start, "end": end, "override_group": "hotfixers"}
    added = app.add_freeze_window(window, actor="admin").value
    app.replace_freeze_window(added["id"], {**window, "name": "w2"}, actor="admin")
    world.runtime.catch_up()
    token = app.gate_context.set(GateContext(caller=Caller("hank", frozenset({"hotfixers"})), override_freeze=True))
    try:
        app.demote(deployment_id, actor="hank", reason="hotfix")
    finally:
        app.gate_context.reset(token)
    app.remove_freeze_window(added["id"], actor="admin")
    app.stop_the_line("admin", "incident")
    app.lift_the_line("admin")
    world.runtime.catch_up()
    assert {app.approval(i).state for i in (rejected, voided, expired, executed)} == {
        "rejected", "voided", "expired", "executed"
    }  # fmt: skip
    rows = world.runtime.store.query("SELECT event_type, summary FROM sk_audit ORDER BY position")
    seen = {r["event_type"]: r["summary"] for r in rows}
    wanted = {*GOVERNANCE_SUMMARIES, "Service.StagePolicyChanged"}
    assert wanted <= set(seen), wanted - set(seen)
    assert [t for t in wanted if seen[t] == t] == []  # a real summary, not the fallback
    assert seen["Approval.Rejected"] == "rejected by bob"
    assert seen["FreezeCalendar.Overridden"].endswith("'int': hotfix")
    assert "1 approval(s) from" in seen["Service.StagePolicyChanged"]
