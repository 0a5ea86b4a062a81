"""Who may change the change controls that govern a stage (review finding 7).

Administrators set and lift them freely. A service owner may only tighten a stage's policy: more
approvers from the same group, no self-approval where it was refused, an expiry no longer than
before, a soak time no shorter, quota limits no higher (and none removed). Loosening is for an
administrator, so the people whose changes the controls govern cannot switch them off. Freeze
windows follow the same line in api/routes/governance.py: owners add windows to their services,
and only administrators change or remove a window an administrator created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.policy import parse_policy
from domain.quotas import parse_quota
from domain.values import normalise_key


def loosened(stage: Mapping[str, Any], changes: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, why) when `changes` to `stage` would loosen its approvals, soak time or quota; None
    when they keep or tighten them. Invalid values raise ValidationError as the command would."""
    policy = parse_policy(dict(changes))
    if "approvals" in policy:
        why = _approvals(stage.get("approvals"), policy["approvals"])
        if why:
            return why
    if "soak_seconds" in policy and int(policy["soak_seconds"] or 0) < int(stage.get("soak_seconds") or 0):
        return "soak_seconds", f"a shorter soak time than {stage.get('soak_seconds')} s"
    if "quota" in changes:
        before, after = stage.get("quota") or {}, parse_quota(changes["quota"]) or {}
        for key, limit in sorted(before.items()):
            if after.get(key) is None or after[key] > limit:
                return f"quota.{key}", f"a higher or no limit on {key} than {limit}"
    return None


def _approvals(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> tuple[str, str] | None:
    if not before:
        return None
    if after is None:
        return "approvals", "removing the approvals policy"
    if after["required"] < before["required"]:
        return "approvals.required", f"fewer approvers than {before['required']}"
    if normalise_key(after["group"]) != normalise_key(before["group"]):
        return "approvals.group", f"another approver group than '{before['group']}'"
    if after["requester_may_approve"] and not before.get("requester_may_approve"):
        return "approvals.requester_may_approve", "letting the requester approve"
    expiry, was = after.get("expiry_hours"), before.get("expiry_hours")
    if was is not None and (expiry is None or expiry > was):
        return "approvals.expiry_hours", f"a longer or no expiry than {was} h"
    return None


def may_change_window(window: Mapping[str, Any], is_admin: bool) -> bool:
    """Whether a non-global window may be changed or removed by an owner of its service (the caller
    is one): not when an administrator created it."""
    return is_admin or not window.get("by_administrator", False)
