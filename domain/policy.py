"""A stage's promotion policy as a user gives it: approvals needed to move into the stage, soak time
before a deployment may be promoted out of it."""

from __future__ import annotations

from typing import Any

from domain.errors import ValidationError
from domain.text import check_text

MAX_APPROVERS = 10
MAX_EXPIRY_HOURS = 24 * 90
MAX_SOAK_SECONDS = 90 * 24 * 3600
MAX_GROUP = 1024
POLICY_KEYS = ("approvals", "soak_seconds")


def _int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{field} must be an integer from {low} to {high}", field=field)
    return value


def parse_approvals(value: object) -> dict[str, Any] | None:
    """{"required": 1-10, "group": ..., "requester_may_approve": false, "expiry_hours": 1-2160}; null: none."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError("approvals must be an object (or null)", field="approvals")
    unknown = set(value) - {"required", "group", "requester_may_approve", "expiry_hours"}
    if unknown:
        raise ValidationError(
            f"unknown field(s): {', '.join(sorted(unknown))}", field=f"approvals.{sorted(unknown)[0]}"
        )
    required = _int(value.get("required"), "approvals.required", 1, MAX_APPROVERS)
    group = check_text(value.get("group"), "approvals.group", max_length=MAX_GROUP, required=True)
    may = value.get("requester_may_approve", False)
    if not isinstance(may, bool):
        raise ValidationError(
            "approvals.requester_may_approve must be true or false", field="approvals.requester_may_approve"
        )
    expiry = value.get("expiry_hours")
    policy: dict[str, Any] = {"required": required, "group": group, "requester_may_approve": may}
    if expiry is not None:
        policy["expiry_hours"] = _int(expiry, "approvals.expiry_hours", 1, MAX_EXPIRY_HOURS)
    return policy


def parse_policy(changes: dict[str, Any]) -> dict[str, Any]:
    """The policy keys of a stage PATCH, checked (null clears a key)."""
    policy: dict[str, Any] = {}
    if "approvals" in changes:
        policy["approvals"] = parse_approvals(changes["approvals"])
    if "soak_seconds" in changes:
        soak = changes["soak_seconds"]
        policy["soak_seconds"] = None if soak is None or soak == 0 else _int(soak, "soak_seconds", 0, MAX_SOAK_SECONDS)
    return policy
