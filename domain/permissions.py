"""Who may do what: roles granted per service (and per stage), decided without I/O.

Roles: `admin` (global, from the directory's admin group or the local break-glass account),
`service-owner` (a service: its stages, configurations, grants), `stage-operator` (a service
and one stage: deploy, undeploy, promote into and demote out of that stage), `viewer` (read).
A restricted stage (production) accepts a configuration only from a stage-operator of that
stage: not from an owner, not from an admin who has not granted themselves the role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.errors import PermissionDeniedError
from domain.values import normalise_key

ROLES = ("viewer", "service-owner", "stage-operator")


@dataclass(frozen=True)
class Caller:
    user: str
    groups: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False


def _matches(grant: dict[str, Any], caller: Caller) -> bool:
    if grant["user"] is not None:
        return bool(normalise_key(grant["user"]) == normalise_key(caller.user))
    return grant["group"] is not None and normalise_key(grant["group"]) in {normalise_key(g) for g in caller.groups}


def roles_on(grants: list[dict[str, Any]], caller: Caller) -> list[dict[str, Any]]:
    """The grants of a service that apply to the caller."""
    return [g for g in grants if _matches(g, caller)]


def can_read(grants: list[dict[str, Any]], caller: Caller) -> bool:
    return caller.is_admin or bool(roles_on(grants, caller))


def can_manage(grants: list[dict[str, Any]], caller: Caller) -> bool:
    return caller.is_admin or any(g["role"] == "service-owner" for g in roles_on(grants, caller))


def operates(grants: list[dict[str, Any]], caller: Caller, stage: str) -> bool:
    return any(
        g["role"] == "stage-operator" and normalise_key(g["stage"] or "") == normalise_key(stage)
        for g in roles_on(grants, caller)
    )


def can_operate(grants: list[dict[str, Any]], caller: Caller, stage: dict[str, Any]) -> bool:
    """Deploy into, undeploy from, promote into or demote out of `stage`."""
    if stage.get("restricted"):
        return operates(grants, caller, stage["name"])
    return can_manage(grants, caller) or operates(grants, caller, stage["name"])


def can_capture(grants: list[dict[str, Any]], caller: Caller, stage: dict[str, Any]) -> bool:
    """Capture running VMs into `stage`: a service owner who is also a stage-operator of that stage.
    Administrators count as owners, and as operators outside restricted stages (as for deploys)."""
    operator = operates(grants, caller, stage["name"]) or (caller.is_admin and not stage.get("restricted"))
    return can_manage(grants, caller) and operator


def require(allowed: bool, caller: Caller, action: str) -> None:
    if not allowed:
        raise PermissionDeniedError(f"{caller.user} may not {action}")
