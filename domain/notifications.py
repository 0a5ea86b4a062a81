"""Notifications: which events are worth telling a webhook about, and the signed body it gets.

Kinds are matched by event topic (text), so events of capabilities other branches add (approvals,
drift) are delivered as soon as they exist, without importing their classes here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

KINDS: dict[str, str] = {
    "stagekeeper:Deployment.LeaseExpiring": "lease-expiring",
    "stagekeeper:Approval.Requested": "approval-requested",
    "stagekeeper:Deployment.DriftDetected": "drift",
    "stagekeeper:Deployment.ProvisioningFailed": "deployment-failed",
    "stagekeeper:Deployment.MoveFailed": "deployment-failed",
    "stagekeeper:Deployment.UpgradeFailed": "deployment-failed",
    "stagekeeper:Deployment.SwapFailed": "deployment-failed",
    "stagekeeper:Deployment.PowerFailed": "deployment-failed",
}
KIND_NAMES = tuple(sorted(set(KINDS.values())))
TOPICS = tuple(KINDS)
SIGNATURE_HEADER = "X-Stagekeeper-Signature"
EVENT_HEADER = "X-Stagekeeper-Event"
KIND_HEADER = "X-Stagekeeper-Kind"


def kind_of(topic: str) -> str | None:
    return KINDS.get(topic)


def body(event_id: str, kind: str, topic: str, at: str, subject: dict[str, Any], data: dict[str, Any]) -> bytes:
    """The JSON a webhook receives (stable key order, so the signature covers exact bytes)."""
    payload = {
        "event_id": event_id,
        "kind": kind,
        "type": topic.removeprefix("stagekeeper:"),
        "at": at,
        **subject,
        "data": data,
    }
    return json.dumps(payload, sort_keys=True, default=str, separators=(",", ":")).encode()


def signature(secret: str, payload: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body with the subscription's secret>`."""
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def verify(secret: str, payload: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, payload), header)
