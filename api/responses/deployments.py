"""Deployments, the board and stage inventory."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from api.responses import Out, Position, State, Timestamp
from api.responses.drift import DriftEntry, Verification
from api.responses.placement import MachinePlacement, RebalanceWork
from api.responses.services import Stage


class MachineView(Out):
    name: str
    template: str
    cpus: int
    memory_mib: int
    os: Literal["linux", "windows"]
    clone_mode: Literal["full", "linked"]
    state: str
    vm_name: str | None
    vm_id: str | None
    ip: str | None = Field(description="The address it has, or until its VM exists, the one it will get")
    mac: str | None
    resource_pool: str | None
    power: str | None = Field(description="vCenter's power state as last recorded (poweredOn after provisioning)")
    power_pending: list[Literal["on", "off", "reset"]] = Field(
        description="Power actions requested and not yet carried out, oldest first"
    )
    copied_from: str | None = Field(None, description="The VM this machine was cloned from (copies of deployments)")
    placement: MachinePlacement | None = Field(None, description="Where placement put it, and why")


class FenceNetwork(Out):
    network: str
    portgroup: str
    vlan: int


class FenceGateway(Out):
    vm_name: str
    external_ip: str | None


class NatEntry(Out):
    machine: str
    internal_ip: str | None
    external_ip: str | None


class Fence(Out):
    """A fenced deployment's own networks, its gateway and the gateway's NAT map."""

    dvswitch: str
    networks: list[FenceNetwork]
    gateway: FenceGateway | None
    nat: list[NatEntry]


class CopySource(Out):
    deployment_id: UUID
    stage: str
    configuration_version: int
    linked: bool


class LeaseExpiry(Out):
    kind: Literal["lease", "idle"]
    policy: Literal["undeploy", "power-off", "archive"]
    at: Timestamp


class Lease(Out):
    expires_at: Timestamp | None = Field(description="When the lease ends (null: no lease)")
    keep: bool = Field(description="Exempt from idle reaping")
    warned_for: Timestamp | None = Field(description="The expiry a LeaseExpiring warned of")
    idle_warned_for: Timestamp | None = Field(description="The idle reaping time a LeaseExpiring warned of")
    expired_for: Timestamp | None = Field(description="The lease end that was acted on")
    reaped_for: Timestamp | None = Field(description="The idle reaping time that was acted on")
    expired: LeaseExpiry | None = Field(description="The last expiry: what and how it was acted on")


class DeploymentEntry(Out):
    """A deployment as the board shows it (its view without machines)."""

    id: UUID
    version: int
    service_id: UUID
    configuration_id: UUID
    configuration_name: str
    configuration_version: int
    stage: str
    resource_pool: str
    target_stage: str | None
    target_pool: str | None
    target_version: int | None = Field(None, description="While upgrading: the configuration version it goes to")
    state: State
    failure: str | None
    attempt: int
    requested_by: str
    requested_at: Timestamp
    updated_at: Timestamp
    captured: bool = Field(
        False, description="It adopted running VMs (capture): undeploy lets go of them unless destroy_vms"
    )
    fence: Fence | None = None
    copied_from: CopySource | None = Field(None, description="The deployment this one copies")
    snapshots: list[str] = Field([], description="Snapshots of every machine, oldest first")
    replaced: UUID | None = Field(None, description="The deployment this one took the place of (swap)")
    replaced_by: UUID | None = Field(None, description="The deployment that took this one's place (kept, off)")
    rebalance: RebalanceWork | None = Field(None, description="A rebalance being carried out")
    drifted: bool = Field(False, description="Its VMs differ from what its history says (see drift)")
    drift: list[DriftEntry] = Field([], description="Open differences between vCenter and the history")
    verification: Verification | None = Field(
        None, description="The last verification after a move, copy, swap or upgrade"
    )
    lease: Lease | None = Field(None, description="When it expires, whether it was warned, kept, expired")


class DeploymentSummary(DeploymentEntry):
    """A deployment as lists show it."""

    machines: list[MachineView]
    position: int = Field(description="Position of the deployment's last event")


class Deployment(DeploymentEntry):
    machines: list[MachineView]
    created_at: Timestamp
    position: Position


class DeploymentList(Out):
    items: list[DeploymentSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last")
    position: Position


class BoardStage(Stage):
    deployments: list[DeploymentEntry] = Field(description="The first live deployments (oldest request first)")
    count: int = Field(description="Live deployments in the stage, listed or not")
    counts: dict[str, int] = Field(description="Live deployments in the stage by state")
    more: int = Field(description="Live deployments in the stage not listed (`count` minus those listed)")


class BoardService(Out):
    id: UUID
    name: str
    version: int
    stages: list[BoardStage]


class Board(Out):
    services: list[BoardService]
    next: str | None = Field(description="Pass as `cursor` for the next page of services; null on the last")
    position: Position
    as_of: Timestamp | None


class InventoryMachine(MachineView):
    stage: str
    deployment_id: UUID
    deployment_state: State
    configuration_name: str
    configuration_version: int


class Inventory(Out):
    items: list[InventoryMachine]
    position: Position


# -- progress stream -------------------------------------------------------------------------------
class ProgressData(Out):
    """`data` of a `progress` event: one event of the deployment, and its state after it."""

    version: int
    type: str
    at: Timestamp
    actor: str | None
    machine: str | None = Field(None, description="The machine the event is about, when it is about one")
    summary: str
    state: State


class EndData(Out):
    """`data` of the `end` event: the deployment rests."""

    state: State
    version: int


def progress_stream() -> dict[str, Any]:
    """The 200 answer of the progress stream: server-sent events whose `data` is JSON."""
    data = {"oneOf": [ProgressData.model_json_schema(), EndData.model_json_schema()]}
    event = {
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"enum": ["progress", "end"]},
            "id": {"type": "string", "description": "The deployment version (send as Last-Event-ID to resume)"},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        },
    }
    return {
        "description": "`progress` events, one per deployment event, then one `end` event when the deployment rests",
        "content": {"text/event-stream": {"itemSchema": event}},
    }
