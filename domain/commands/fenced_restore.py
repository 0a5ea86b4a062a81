"""A restore behind the stage's fence: the archived machines keep their addresses and MACs, on their
own port groups, beside a live deployment holding the same ones (issue 12).

The restore's Deployment is written as a fenced copy's is: FenceRequested and FencePlanned (one VLAN
per network and the external addresses of the gateway and of every mapped machine, claimed in the
same write) together with Captured (the registered VMs adopted) and the archive's Restored. The
machines' own addresses are not claimed: the fence isolates them. The archive process then makes the
port groups, moves the NICs onto them, powers the machines on and adds the gateway with its NAT map
(domain/processes/fenced_restore.py).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.application import StagekeeperApplication
from domain.commands import fencing
from domain.deployment import Deployment
from domain.errors import ConflictError, ValidationError
from domain.names import NameClaim


def check_stage_fences(stage: dict[str, Any]) -> None:
    if not stage.get("dvswitch"):
        raise ValidationError(
            f"stage '{stage['name']}' has no fenced networks (set its dvswitch, vlan_range, "
            "fence_gateway_template and external_network)",
            field="fence",
        )


def fence_restored(
    app: StagekeeperApplication,
    deployment: Deployment,
    stage: dict[str, Any],
    adopted: list[dict[str, Any]],
    actor: str,
) -> list[NameClaim]:
    """Request and plan the fence of the (just requested) restored deployment; its claims."""
    check_stage_fences(stage)
    deployment.request_fence(stage, actor)
    taken: set[tuple[str, str, str]] = set()

    def claim(kind: str, scope: str, name: str, owner: UUID) -> NameClaim | None:
        key = (kind, scope, name.casefold())
        if key in taken:
            return None
        try:
            found = app.claim_name(kind, scope, name, owner)
        except ConflictError:
            return None
        taken.add(key)
        return found

    internal = {m["name"]: m["addressing"] for m in adopted}
    networks, gateway, nat, claims = fencing.plan(deployment, stage, internal, claim)
    deployment.record_fence_plan(networks, gateway, nat, actor)
    return claims
