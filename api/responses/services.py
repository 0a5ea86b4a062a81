"""Services, their stages and grants."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field, model_validator

from api.responses import Out, Position, Timestamp


class IpPool(Out):
    cidr: str
    gateway: str
    dns: list[str]
    first: str
    last: str


class VlanRange(Out):
    first: int
    last: int


class ApprovalPolicy(Out):
    required: int
    group: str
    requester_may_approve: bool
    expiry_hours: int | None = None


class StageQuota(Out):
    vcpus: int | None = None
    memory_mib: int | None = None
    disk_gib: int | None = None


class StageVerification(Out):
    checks: list[dict[str, Any]]
    deadline_seconds: int
    rollback: bool


class LeasePolicy(Out):
    default: str | None
    maximum: str | None
    warning: str | None
    on_expiry: Literal["undeploy", "power-off", "archive"]
    idle_days: int | None


class Stage(Out):
    id: UUID = Field(description="Stable id: it stays when the stage is renamed")
    name: str
    resource_pool: str
    restricted: bool
    ip_pools: list[IpPool] = []
    dvswitch: str | None = None
    vlan_range: VlanRange | None = None
    fence_gateway_template: str | None = None
    external_network: str | None = None
    fence: Literal["optional", "always"] = "optional"
    copy_mode: Literal["full", "linked"] = "full"
    approvals: ApprovalPolicy | None = Field(None, description="Approvals needed to move into the stage")
    soak_seconds: int | None = Field(None, description="How long a deployment runs here before it may be promoted")
    quota: StageQuota | None = Field(None, description="Limits on what the stage may hold (none: no quota)")
    extra_pools: list[str] = Field([], description="More resource pools placement may use (other clusters)")
    verification: StageVerification | None = Field(None, description="Checks after a promote, copy, swap or upgrade")
    lease_policy: LeasePolicy | None = None


class ServiceStage(Stage):
    live_deployments: int = Field(description="Deployments living in the stage (requested to failed)")


class Service(Out):
    id: UUID
    version: int
    name: str
    description: str
    retired: bool
    stages: list[ServiceStage]
    created_at: Timestamp
    updated_at: Timestamp
    position: Position


class ServiceSummary(Out):
    id: UUID
    name: str
    description: str
    stages: list[Stage]
    retired: bool
    version: int
    created_at: Timestamp
    created_by: str
    updated_at: Timestamp
    position: Position

    @model_validator(mode="before")
    @classmethod
    def _drop_sort_key(cls, data: Any) -> Any:
        # The read model's case-folded sort column is storage, not part of the answer.
        if isinstance(data, dict) and "name_key" in data:
            return {k: v for k, v in data.items() if k != "name_key"}
        return data


class ServiceList(Out):
    items: list[ServiceSummary]
    position: Position


class Grant(Out):
    id: str
    role: Literal["viewer", "service-owner", "stage-operator"]
    user: str | None
    group: str | None
    stage: str | None
    granted_by: str


class GrantChange(Grant):
    position: Position


class GrantRevoked(GrantChange):
    revoked: Literal[True]


class GrantList(Out):
    items: list[Grant]
