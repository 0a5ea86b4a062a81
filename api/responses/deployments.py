"""Deployments, the board and stage inventory."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from api.responses import Out, Position, State, Timestamp
from api.responses.services import Stage


class MacAddress(Out):
    network: str
    mac: str


class Addressing(Out):
    ip: str | None
    cidr: str | None
    prefix_length: int | None
    gateway: str | None
    dns: list[str]
    macs: list[MacAddress]


class DeploymentMachine(Out):
    name: str
    template: str
    state: str
    vm_name: str | None
    vm_id: str | None
    ip: str | None
    mac: str | None
    resource_pool: str | None
    addressing: Addressing | None = None


class Deployment(Out):
    id: UUID
    version: int
    service_id: UUID
    configuration_id: UUID
    configuration_name: str
    configuration_version: int
    stage: str
    resource_pool: str
    state: State
    target_stage: str | None
    failure: str | None
    attempt: int
    requested_by: str
    machines: list[DeploymentMachine]
    created_at: Timestamp
    updated_at: Timestamp
    position: Position


class MachineSummary(Out):
    name: str
    template: str
    cpus: int
    memory_mib: int
    os: Literal["linux", "windows"]
    clone_mode: Literal["full", "linked"]
    state: str
    vm_name: str | None
    ip: str | None
    mac: str | None
    resource_pool: str | None


class DeploymentSummary(Out):
    id: UUID
    service_id: UUID
    configuration_id: UUID
    configuration_name: str
    configuration_version: int
    stage: str
    resource_pool: str
    target_stage: str | None
    target_pool: str | None
    state: State
    failure: str | None
    machines: list[MachineSummary]
    requested_by: str
    requested_at: Timestamp
    updated_at: Timestamp
    version: int
    position: int


class DeploymentList(Out):
    items: list[DeploymentSummary]
    position: Position


class BoardDeployment(Out):
    """A deployment living in a stage now."""

    id: UUID
    service_id: UUID
    configuration_id: UUID
    configuration_name: str
    configuration_version: int
    stage: str
    target_stage: str | None
    state: State
    failure: str | None
    requested_by: str
    requested_at: Timestamp
    updated_at: Timestamp
    version: int


class BoardDeploymentThen(Out):
    """A deployment that lived in a stage at `as_of`, with its state then."""

    deployment_id: UUID
    service_id: UUID
    stage: str
    configuration_id: UUID
    configuration_name: str
    configuration_version: int
    state: State | None


class BoardStage(Stage):
    deployments: list[BoardDeployment | BoardDeploymentThen]


class BoardService(Out):
    id: UUID
    name: str
    version: int
    stages: list[BoardStage]


class Board(Out):
    services: list[BoardService]
    position: Position
    as_of: Timestamp | None


class InventoryMachine(MachineSummary):
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
