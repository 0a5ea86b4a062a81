"""The answer of a capture (or of its dry run)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from api.responses import Out, Position
from api.responses.configurations import Machine, Network
from api.responses.deployments import Deployment


class CapturedConfiguration(Out):
    id: UUID
    name: str
    version: int = Field(description="The configuration version the capture records (or would record)")
    networks: list[Network]
    machines: list[Machine]


class CaptureClaim(Out):
    kind: Literal["vm", "mac", "ip"]
    scope: str = Field(description="vcenter (VM ids), the network (MACs) or ipv4")
    name: str
    machine: str


class CaptureRefusal(Out):
    vm: str
    vm_id: str
    reason: str


class CaptureAnswer(Out):
    dry_run: bool
    configuration: CapturedConfiguration
    claims: list[CaptureClaim] = Field(description="The addresses and VMs the deployment holds (or would hold)")
    refusals: list[CaptureRefusal] = Field(description="Why VMs cannot be captured (a dry run only; else 409)")
    deployment: Deployment | None = Field(description="The adopted deployment (null for a dry run)")
    position: Position
