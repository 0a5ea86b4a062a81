"""Review finding 10: an approved or scheduled request is re-authorised when it is carried out
(every store). The requester must still operate the stage through the service's grants."""

from __future__ import annotations

from domain.approval import EXECUTED, VOIDED
from domain.permissions import Caller
from domain.processes.approvals import tick
from tests.contract.test_governance import (  # noqa: F401
    World,
    audit,
    deployed,
    member,
    needs_approvals,
    requested,
    world,
)

TEAM = "cn=payroll-team,ou=groups,dc=example"


def test_an_approved_request_is_voided_with_the_reason_when_the_requester_lost_the_role(world: World) -> None:  # noqa: F811
    app = world.runtime.app
    grant = app.grant_role(world.service_id, "service-owner", "alice", None, None, actor="admin", reason="team")
    needs_approvals(world, required=1)
    deployment_id = deployed(world)
    approval_id = requested(world, deployment_id)
    app.revoke_grant(world.service_id, grant.value["id"], actor="admin", reason="alice left the team")
    app.approve(approval_id, member("bob"), "tests green")
    tick(app)
    approval = app.approval(approval_id)
    assert approval.state == VOIDED
    assert "alice no longer holds a role that may promote into stage 'test'" in (approval.closed_reason or "")
    assert app.deployment(deployment_id).stage == "int"
    voided = audit(world, "Approval.Voided")
    assert [("no longer holds a role" in str(r["summary"]) + str(r["reason"])) for r in voided] == [True]


def test_a_requester_who_still_operates_through_a_group_runs_the_request(world: World) -> None:  # noqa: F811
    """The control: a group grant, the groups recorded when asked; another grant revoked does not matter."""
    app = world.runtime.app
    app.grant_role(world.service_id, "service-owner", None, TEAM, None, actor="admin", reason="team")
    other = app.grant_role(world.service_id, "viewer", "alice", None, None, actor="admin", reason="reads")
    needs_approvals(world, required=1)
    deployment_id = deployed(world)
    approval_id = requested(world, deployment_id, caller=Caller("alice", frozenset({TEAM})))
    app.revoke_grant(world.service_id, other.value["id"], actor="admin", reason="not needed")
    app.approve(approval_id, member("bob"), "tests green")
    tick(app)
    assert app.approval(approval_id).state == EXECUTED
    world.runtime.catch_up()
    assert app.deployment(deployment_id).stage == "test"
