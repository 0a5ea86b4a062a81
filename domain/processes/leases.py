"""The lease scheduler: warns before leases end and acts when they do (and reaps idle deployments).

It runs in the worker that leads the process manager (one active instance), every few seconds, and
keeps no state of its own: what is due comes from the lease read model (projections/leases.py) and
the time from the Clock port, so a restarted worker carries on where the events say it was, and
tests move the clock and call `tick()`. Each step re-reads the deployment and decides again
(LeaseCommands.lease_step); what it does at expiry goes through the existing commands' rules: an
undeploy (UndeployRequested, or LetGoRequested for captured VMs) or a whole-deployment power-off,
which the process manager then carries out in vCenter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain import leases, linkedcopies
from domain.commands.leases import LEASE_ACTOR, Act, LeaseCommands
from domain.deployment import Deployment
from domain.errors import ConflictError, NotFoundError
from domain.ports import Clock
from domain.service import Service

log = logging.getLogger(__name__)

Candidates = Callable[[], Sequence[dict[str, Any]]]
# (deployment id, activity version, time by the Clock): the scheduler saw that activity then.
NoteSeen = Callable[[str, int, str], None]


@dataclass(frozen=True)
class Step:
    deployment_id: str
    due: leases.Due


def actor_for(repository: Any) -> Act:
    """What the stage's policy does at expiry, as events on the deployment (saved with LeaseExpired)."""

    def act(deployment: Deployment, due: leases.Due, policy: leases.LeasePolicy, reason: str) -> None:
        if policy.on_expiry == "power-off" and deployment.state == "deployed":
            _power_off(deployment, reason)
        elif policy.on_expiry == "archive":
            _archive_then_undeploy(deployment, reason)
        else:
            _undeploy(repository, deployment, reason)

    return act


def _undeploy(repository: Any, deployment: Deployment, reason: str) -> None:
    """As the undeploy command does: captured VMs are let go of (never destroyed by a lease), and a
    deployment that linked copies still hang on is not destroyed (LeaseExpired alone records it)."""
    if deployment.captured:
        deployment.request_let_go(LEASE_ACTOR, reason)
        return
    try:
        linkedcopies.check_destroyable(repository, deployment)
    except ConflictError as error:
        log.warning("lease expiry of %s does not undeploy it: %s", deployment.id, error)
        return
    deployment.request_undeploy(LEASE_ACTOR, reason)


def _power_off(deployment: Deployment, reason: str) -> None:
    try:
        deployment.request_deployment_power("off", LEASE_ACTOR, reason)
    except ConflictError as error:
        # Every machine already off, or power work pending: LeaseExpired alone records the expiry.
        log.info("lease power-off of %s: %s", deployment.id, error)


def _archive_then_undeploy(deployment: Deployment, reason: str) -> None:
    """Nothing more is written with LeaseExpired (policy "archive"): the archive process reads that
    event, archives the deployment, and undeploys it once the archive is complete
    (domain/processes/lease_archive.py), so no machine is destroyed without its archive."""


class LeaseScheduler:
    """`tick()`: one pass over the read model; `catch_up()` lets a FollowerThread run it."""

    name = "leases"

    def __init__(
        self, app: LeaseCommands, candidates: Candidates, note_seen: NoteSeen, clock: Clock, interval: float = 30.0
    ) -> None:
        self.app = app
        self.candidates = candidates
        self.note_seen = note_seen
        self.clock = clock
        self.interval = interval
        self._last: float | None = None

    def position(self) -> int:
        """A scheduler follows the clock, not the event log: it has no position of its own."""
        return 0

    def catch_up(self, until: int | None = None) -> int:
        # Passes are spaced in real time (a test's fixed Clock must not stop them); what is due is
        # decided by the Clock.
        now = time.monotonic()
        if self._last is not None and now - self._last < self.interval:
            return 0
        self._last = now
        return len(self.tick())

    def tick(self) -> list[Step]:
        """Warn and expire what is due now; returns the steps recorded."""
        now = self.clock.now()
        policies: dict[str, Service | None] = {}
        done: list[Step] = []
        for row in self.candidates():
            if not row["current"]:
                continue  # the lease read model is behind this deployment: next tick
            policy = self._policy(policies, row)
            last = leases.instant(row["last_activity"]) if row["last_activity"] else None
            if row["activity_version"] is not None and not row["seen"]:
                # Idle time runs on the Clock from when this activity was first seen.
                self.note_seen(row["id"], int(row["activity_version"]), leases.stamp(now))
                last = now
            if leases.due(row["lease"], row["state"], policy, last, now) is None:
                continue
            try:
                due = self.app.lease_step(UUID(row["id"]), last, row["version"], actor_for(self.app.repository))
            except (NotFoundError, ConflictError) as error:
                log.warning("lease step of deployment %s not taken: %s", row["id"], error)
                continue
            if due is not None:
                done.append(Step(row["id"], due))
        return done

    def _policy(self, cache: dict[str, Service | None], row: dict[str, Any]) -> leases.LeasePolicy | None:
        if row["service_id"] not in cache:
            try:
                cache[row["service_id"]] = self.app.load(Service, UUID(row["service_id"]), "service")
            except NotFoundError:
                cache[row["service_id"]] = None
        service = cache[row["service_id"]]
        if service is None:
            return None
        try:
            return leases.policy_of(service.stage(row["stage"]))
        except NotFoundError:
            return None


def report(
    rows: Sequence[dict[str, Any]],
    policies: Callable[[str, str], leases.LeasePolicy | None],
    now: datetime,
    until: datetime,
) -> list[dict[str, Any]]:
    """What would expire or be reaped between now and `until` (the dry-run report), soonest first."""
    found: list[dict[str, Any]] = []
    for row in rows:
        policy = policies(row["service_id"], row["stage"])
        last = leases.instant(row["last_activity"]) if row["last_activity"] else None
        for kind, when in leases.upcoming(row["lease"], row["state"], policy, last, until):
            found.append(
                {
                    "deployment_id": row["id"],
                    "service_id": row["service_id"],
                    "configuration_name": row["configuration_name"],
                    "stage": row["stage"],
                    "state": row["state"],
                    "kind": kind,
                    "at": leases.stamp(when),
                    "overdue": when <= now,
                    "action": policy.on_expiry if policy else "undeploy",
                    "last_activity": row["last_activity"],
                    "keep": bool((row["lease"] or {}).get("keep")),
                }
            )
    return sorted(found, key=lambda item: (item["at"], item["deployment_id"]))
