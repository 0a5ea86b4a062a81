"""Placement: where each machine went and why, and rebalance plans."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from api.responses import Out, Position


class MachinePlacement(Out):
    cluster: str | None = Field(description="The compute resource (cluster) chosen")
    resource_pool: str | None
    host: str
    datastore: str | None
    reason: str | None = Field(description="Why there: the rules and figures that decided it")


class RebalanceMove(Out):
    machine: str
    cluster: str
    from_host: str
    host: str
    reason: str


class RebalanceWork(Out):
    moves: list[RebalanceMove]
    done: list[str] = Field(description="Machines already moved")


class RebalancePlan(Out):
    deployment_id: UUID
    dry_run: bool
    recorded: bool = Field(description="The plan was recorded and the moves are being carried out")
    moves: list[RebalanceMove]
    version: int
    position: Position
