"""Leases report and webhooks."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from api.responses import Out, Position, Timestamp

Kind = Literal["approval-requested", "deployment-failed", "drift", "lease-expiring"]


class LeaseReportItem(Out):
    deployment_id: UUID
    service_id: UUID
    configuration_name: str | None
    stage: str
    state: str
    kind: Literal["lease", "idle"] = Field(description="lease: its lease ends; idle: idle reaping")
    at: Timestamp = Field(description="When it expires or is reaped")
    overdue: bool = Field(description="Due already: the scheduler acts on its next pass")
    action: Literal["undeploy", "power-off", "archive"]
    last_activity: Timestamp | None
    keep: bool


class LeaseReport(Out):
    dry_run: bool
    now: Timestamp
    until: Timestamp
    items: list[LeaseReportItem]
    position: Position


class Webhook(Out):
    id: UUID
    service_id: UUID | None = Field(description="null: every service (administrators)")
    kinds: list[Kind]
    url: str
    created_by: str
    created_at: Timestamp | None
    source: Literal["api", "settings"] = "api"


class NewWebhook(Webhook):
    secret: str = Field(description="Signs every body (HMAC-SHA256): shown only in this answer")
    position: Position


class WebhookList(Out):
    items: list[Webhook]
    position: Position


class RemovedWebhook(Webhook):
    position: Position


class Delivery(Out):
    event_id: str = Field(description="The event's id (X-Stagekeeper-Event): the same on every retry")
    position: int
    kind: Kind
    event_type: str
    service_id: UUID | None
    state: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_at: Timestamp
    last_status: int | None
    last_error: str | None
    delivered_at: Timestamp | None
    created_at: Timestamp


class DeliveryList(Out):
    items: list[Delivery]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; null on the last")
