"""Lease commands: a lease at deploy, PATCH .../lease (extend, set, keep), and the scheduler's steps.

An extension and an expiry of one deployment both write the deployment: the optimistic lock on its
version lets exactly one of them commit; the loser is retried from a fresh read and decides again
(an expiry finds the lease extended and does nothing; an extension finds the deployment undeploying
and is refused with 409).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from domain import leases
from domain.application import Outcome, StagekeeperApplication
from domain.deployment import Deployment
from domain.errors import ValidationError
from domain.service import Service
from domain.text import check_reason

LEASE_ACTOR = "stagekeeper:lease"
CHANGE_FIELDS = ("extend_by", "expires_at", "keep")

# What the scheduler does at expiry: (deployment, due, policy, reason) -> None, adding events.
Act = Callable[[Deployment, leases.Due, leases.LeasePolicy, str], None]


def start_lease(
    deployment: Deployment,
    stage: dict[str, Any],
    lease: object,
    expires_at: object,
    now: datetime,
    actor: str,
    reason: str | None,
) -> None:
    """Give a new deployment its lease: asked (`lease` or `expires_at`) or the stage's default."""
    expiry, asked = leases.requested_expiry(leases.policy_of(stage), lease, expires_at, now)
    if expiry is not None:
        deployment._lease_set(expires_at=leases.stamp(expiry), lease=asked, actor=actor, reason=reason)


class LeaseCommands(StagekeeperApplication):
    def stage_policy(self, deployment: Deployment) -> leases.LeasePolicy | None:
        service = self.load(Service, deployment.service_id, "service")
        return leases.policy_of(service.stage(deployment.stage))

    def change_lease(
        self,
        deployment_id: UUID,
        change: dict[str, Any],
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome[Deployment]:
        """Extend a lease (`extend_by`), set its end (`expires_at`) within the stage's maximum, or
        exempt the deployment from idle reaping (`keep`)."""
        reason = check_reason(reason)
        given = {k: v for k, v in change.items() if v is not None}
        unknown = set(given) - set(CHANGE_FIELDS)
        if unknown:
            raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
        if not given:
            raise ValidationError('give "extend_by", "expires_at" or "keep"', field="extend_by")
        if "keep" in given and not isinstance(given["keep"], bool):
            raise ValidationError("keep must be true or false", field="keep")

        def attempt() -> Outcome[Deployment]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            self.check_version(deployment, expected_version, "deployment")
            leases.check_changeable(deployment.lease, deployment.state)
            now = self.clock.now()
            if "extend_by" in given or "expires_at" in given:
                policy = self.stage_policy(deployment)
                expiry = leases.new_expiry(deployment.lease, policy, given, now)
                before = (deployment.lease or {}).get("expires_at")
                deployment._lease_extended(before=before, expires_at=leases.stamp(expiry), actor=actor, reason=reason)
            if "keep" in given and bool((deployment.lease or {}).get("keep")) != given["keep"]:
                deployment._keep_changed(keep=given["keep"], actor=actor, reason=reason)
            return Outcome(deployment, self.commit(deployment))

        return self.retrying(attempt)

    def lease_step(
        self,
        deployment_id: UUID,
        last_activity: datetime | None,
        expected_version: int | None,
        act: Act,
    ) -> leases.Due | None:
        """Record what is due now for one deployment (a warning, or an expiry and its action), from a
        fresh read. An idle decision stands only if nothing happened to the deployment since the read
        model's `expected_version` (its last activity was read at that version)."""

        def attempt() -> Outcome[leases.Due | None]:
            deployment = self.load(Deployment, deployment_id, "deployment")
            policy = self.stage_policy(deployment)
            due = leases.due(deployment.lease, deployment.state, policy, last_activity, self.clock.now())
            if due is None or (due.kind == "idle" and deployment.version != expected_version):
                return Outcome(None, 0)
            at = leases.stamp(due.at)
            if due.action == "warn":
                what = "lease expires" if due.kind == "lease" else "idle deployment is undeployed"
                reason = f"{what} at {at}"
                deployment._lease_expiring(
                    kind=due.kind, at=at, stage=deployment.stage, actor=LEASE_ACTOR, reason=reason
                )
            else:
                assert policy is not None or due.kind == "lease"
                effective = policy or leases.LeasePolicy()
                since = leases.stamp(last_activity or due.at)
                reason = (
                    f"lease expired at {at}"
                    if due.kind == "lease"
                    else f"idle for {effective.idle_days} day(s) (no activity since {since})"
                )
                deployment._lease_expired(
                    kind=due.kind, policy=effective.on_expiry, at=at, actor=LEASE_ACTOR, reason=reason
                )
                act(deployment, due, effective, reason)
            return Outcome(due, self.commit(deployment))

        return self.retrying(attempt).value
