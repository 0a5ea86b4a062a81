"""How drift and verification events change a deployment (the event handlers in
domain/deployment.py call these), and what its view shows of them.

Drift entries are keyed "machine.field". Every function returns new containers: the aggregate's
class defaults (None) are never mutated, so deployments from before drift detection read as none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from domain.deployment import Deployment

# What adopting a field changes on the machine entry (spec fields become a new configuration version).
SPEC_FIELDS = ("cpus", "memory_mib", "disks")
MACHINE_FIELDS = {"power": "power", "resource_pool": "resource_pool", "host": "host"}


def key(machine: str, field: str) -> str:
    return f"{machine}.{field}"


def detected(
    drift: dict[str, dict[str, Any]] | None, machine: str, field: str, expected: Any, actual: Any
) -> dict[str, dict[str, Any]]:
    found = dict(drift or {})
    found[key(machine, field)] = {
        "machine": machine, "field": field, "expected": expected, "actual": actual, "reverting": False,
        "revert_failure": None,
    }  # fmt: skip
    return found


def resolved(drift: dict[str, dict[str, Any]] | None, machine: str, field: str) -> dict[str, dict[str, Any]]:
    found = dict(drift or {})
    found.pop(key(machine, field), None)
    return found


def reverting(
    drift: dict[str, dict[str, Any]] | None, machine: str, field: str, value: bool
) -> dict[str, dict[str, Any]]:
    found = dict(drift or {})
    entry = found.get(key(machine, field))
    if entry is not None:
        found[key(machine, field)] = {**entry, "reverting": value, "revert_failure": None}
    return found


def reverted(
    drift: dict[str, dict[str, Any]] | None, machine: str, field: str, failed: bool, reason: str | None
) -> dict[str, dict[str, Any]]:
    """A revert carried out leaves the entry until the next check sees vCenter agree (DriftResolved);
    a failed one keeps it, with vCenter's reason."""
    found = dict(drift or {})
    entry = found.get(key(machine, field))
    if entry is not None:
        found[key(machine, field)] = {**entry, "reverting": False, "revert_failure": reason if failed else None}
    return found


def adopt(deployment: Deployment, machine: str, field: str, value: Any, configuration_version: int) -> None:
    """Reality becomes the record: the machine's spec (a new configuration version) or its entry."""
    entry = deployment.machine(machine)
    if field in SPEC_FIELDS:
        spec = dict(entry["spec"])
        spec[field] = [{"size_gib": size} for size in value] if field == "disks" else value
        entry["spec"] = spec
        deployment.configuration_version = configuration_version
    else:
        entry[MACHINE_FIELDS[field]] = value
    deployment.drift = resolved(deployment.drift, machine, field)


def verification_started(
    after: str, for_version: int, stage: str, checks: list[dict[str, Any]], deadline: str, rollback: bool
) -> dict[str, Any]:
    return {
        "after": after, "for_version": for_version, "stage": stage, "checks": checks, "deadline": deadline,
        "rollback": rollback, "state": "running", "results": [], "rolled_back": None,
    }  # fmt: skip


def verification_ended(
    verification: dict[str, Any] | None, state: str, results: list[dict[str, Any]], rollback: str | None
) -> dict[str, Any]:
    return {**(verification or {}), "state": state, "results": results, "rolled_back": rollback}


def drift_view(drift: dict[str, dict[str, Any]] | None, verification: dict[str, Any] | None) -> dict[str, Any]:
    """The view's drift and verification parts (sorted, so views compare equal across replays)."""
    found = drift or {}
    entries = [dict(found[k]) for k in sorted(found)]
    return {"drifted": bool(entries), "drift": entries, "verification": verification}
