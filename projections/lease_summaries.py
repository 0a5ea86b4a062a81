"""Audit lines for lease and webhook events (merged into projections/summaries.SUMMARIES)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Data = dict[str, Any]


def _policy(policy: Data | None) -> str:
    if not policy:
        return "none (nothing expires)"
    parts = [
        f"default {policy.get('default') or 'none'}",
        f"maximum {policy.get('maximum') or 'none'}",
        f"warning {policy.get('warning') or 'P1D'}",
        f"on expiry {policy.get('on_expiry', 'undeploy')}",
    ]
    if policy.get("idle_days"):
        parts.append(f"idle after {policy['idle_days']} day(s)")
    return ", ".join(parts)


def _expiring(d: Data) -> str:
    if d["kind"] == "idle":
        return f"idle: will be reaped at {d['at']} unless used, extended or kept"
    return f"lease expires at {d['at']}"


LEASE_SUMMARIES: dict[str, Callable[[Data], str]] = {
    "Service.StageLeasePolicyChanged": lambda d: (
        f"stage '{d['stage']}' lease policy: {_policy(d['before'])} -> {_policy(d['policy'])}"
    ),
    "Deployment.LeaseSet": lambda d: (
        f"lease set: expires at {d['expires_at']}" + (f" ({d['lease']})" if d.get("lease") else "")
        if d.get("expires_at")
        else "no lease"
    ),
    "Deployment.LeaseExtended": lambda d: f"lease extended: {d['before'] or 'none'} -> {d['expires_at']}",
    "Deployment.KeepChanged": lambda d: "kept: exempt from idle reaping" if d["keep"] else "no longer kept",
    "Deployment.LeaseExpiring": _expiring,
    "Deployment.LeaseExpired": lambda d: (
        f"{'lease expired' if d['kind'] == 'lease' else 'idle deployment reaped'} at {d['at']}: {d['policy']}"
    ),
    "Webhook.Subscribed": lambda d: (
        f"webhook to {d['url']} for {', '.join(d['kinds'])}" + ("" if d.get("service_id") else " (every service)")
    ),
    "Webhook.Removed": lambda d: "webhook removed",
}
