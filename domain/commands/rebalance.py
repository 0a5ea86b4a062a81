"""Rebalancing a deployment across the hosts of its clusters: an explicit, audited command. The
plan (moves with reasons, from domain/placement.py over vCenter's inventory and where each VM runs
now) is answered for a dry run and, otherwise, recorded as RebalanceRequested, which the process
manager carries out (domain/processes/placement.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain import governance
from domain.application import Outcome, StagekeeperApplication
from domain.deployment import DEPLOYED, Deployment
from domain.errors import InvalidTransitionError, ValidationError
from domain.paths import PoolPath
from domain.placement import Move, Placed, need_of, plan_rebalance
from domain.text import check_reason


@dataclass(frozen=True)
class Rebalance:
    deployment: Deployment
    moves: list[Move]
    dry_run: bool


class RebalanceCommands(StagekeeperApplication):
    # Free space a datastore keeps when placement puts a machine's disks on it (a setting).
    placement_margin_percent: int = 10

    def rebalance_deployment(
        self, deployment_id: UUID, dry_run: object, actor: str, reason: str | None = None
    ) -> Outcome[Rebalance]:
        """Plan moves of a deployed deployment's machines between hosts of their clusters (anti-affinity,
        affinity groups, hosts out of service); unless `dry_run`, record the plan for the process manager."""
        reason = check_reason(reason)
        if not isinstance(dry_run, bool):
            raise ValidationError("dry_run must be true or false", field="dry_run")
        deployment: Deployment = self.load(Deployment, deployment_id, "deployment")
        if deployment.state != DEPLOYED:
            raise InvalidTransitionError(
                f"cannot rebalance a deployment that is {deployment.state} (allowed from: {DEPLOYED})"
            )
        moves = self._plan(deployment)
        if dry_run or not moves:
            return Outcome(Rebalance(deployment, moves, dry_run), self.head())
        # Moving VMs is a lifecycle command: stop the line and freeze windows hold (review finding 5).
        # No approval: a rebalance changes neither the configuration nor the stage, like power.
        governance.admit(self, "rebalance", deployment_id, actor, reason)
        plan = [m.to_dict() for m in moves]

        def attempt() -> Outcome[Rebalance]:
            # Rebalancing touches no other aggregate: the deployment alone, re-read on a lost race.
            current: Deployment = self.load(Deployment, deployment_id, "deployment")
            current.request_rebalance(plan, actor, reason)
            return Outcome(Rebalance(current, moves, dry_run), self.commit(current))

        return self.retrying(attempt)

    def _plan(self, deployment: Deployment) -> list[Move]:
        datacenter = PoolPath.parse(deployment.resource_pool).datacenter
        clusters = self.vcenter.placement_inventory(datacenter)
        hosts = {h.name: c.name for c in clusters for h in c.hosts}
        machines = []
        for machine in deployment.machines:
            if machine["state"] != "provisioned" or not machine.get("vm_id"):
                continue
            where = self.vcenter.vm_location(machine["vm_id"])
            if where.host not in hosts:
                continue  # a standalone host or another datacenter: nothing to move between
            need = need_of(machine["spec"])
            placed = Placed(need.machine, hosts[where.host], where.host, need.tier, need.affinity_group)
            machines.append((need, placed))
        return plan_rebalance(machines, clusters, self.placement_margin_percent)

    def rebalance_view(self, rebalance: Rebalance) -> dict[str, Any]:
        return {"dry_run": rebalance.dry_run, "moves": [m.to_dict() for m in rebalance.moves]}
