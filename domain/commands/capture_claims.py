"""The claims a captured deployment holds in the event store: each adopted VM (by its vCenter id),
each NIC's MAC (per network) and the IP VMware Tools reported. They are saved in the same write as
the deployment, so two captures of one VM, or of one address, cannot both win; undeploy releases
them in the write that records Undeployed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain.application import StagekeeperApplication
from domain.commands.addresses import IP_CLAIMS, IPV4_SCOPE, MAC_CLAIMS
from domain.deployment import Deployment
from domain.names import NameClaim

VM_CLAIMS = "vm"
VM_SCOPE = "vcenter"

Holder = Callable[[UUID], str | None]


def wanted_claims(adopted: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, scope, name) of every claim one adopted machine holds."""
    wanted = [(VM_CLAIMS, VM_SCOPE, adopted["vm_id"])]
    wanted += [(MAC_CLAIMS, n["network"], n["mac"]) for n in adopted["addressing"]["macs"]]
    if adopted["ip"]:
        wanted.append((IP_CLAIMS, IPV4_SCOPE, adopted["ip"]))
    return wanted


def claim_ids(adopted: list[dict[str, Any]]) -> list[UUID]:
    """The ids of the claims the adopted machines hold (what `read_claims` reads)."""
    return [NameClaim.id_for(kind, scope, name) for machine in adopted for kind, scope, name in wanted_claims(machine)]


def read_claims(app: StagekeeperApplication, adopted: list[dict[str, Any]]) -> dict[UUID, NameClaim | None]:
    """The claims the adopted machines hold as the store has them now (None: none yet), read ahead
    of `take_claims`: a claim changed in between fails the write that saves it, as any stale read."""
    return {claim_id: _get(app, claim_id) for claim_id in claim_ids(adopted)}


def take_claims(
    app: StagekeeperApplication,
    deployment_id: UUID,
    adopted: list[dict[str, Any]],
    holder: Holder,
    read: dict[UUID, NameClaim | None] | None = None,
) -> tuple[list[NameClaim], list[dict[str, str]], list[dict[str, str]]]:
    """(claims to save, the claims as data, refusals naming both sides) for the adopted machines.
    `read`: claims read ahead (read_claims), used instead of reading them again; the others are read."""
    claims: list[NameClaim] = []
    described: list[dict[str, str]] = []
    refusals: list[dict[str, str]] = []
    for machine in adopted:
        owner = uuid5(deployment_id, machine["name"])
        for kind, scope, name in wanted_claims(machine):
            described.append({"kind": kind, "scope": scope, "name": name, "machine": machine["name"]})
            claim_id = NameClaim.id_for(kind, scope, name)
            existing = read[claim_id] if read is not None and claim_id in read else _get(app, claim_id)
            if existing is not None and existing.owner_id is not None and existing.owner_id != owner:
                what = {VM_CLAIMS: f"VM {name}", MAC_CLAIMS: f"MAC {name} on network '{scope}'"}.get(kind, f"IP {name}")
                held_by = (
                    holder(existing.owner_id) or f"another live deployment's machine (claim owner {existing.owner_id})"
                )
                refusals.append(
                    {
                        "vm": machine["vm_name"],
                        "vm_id": machine["vm_id"],
                        "reason": f"{what} of VM {machine['vm_name']} (machine '{machine['name']}') "
                        f"is held by {held_by}",
                    }
                )
                continue
            if existing is None:
                claims.append(NameClaim(kind=kind, scope=scope, name=name, owner_id=owner))
            else:  # read once: the claim found above is the one taken (as claim_name would read it again)
                existing.reclaim(owner, name)
                claims.append(existing)
    return claims, described, refusals


def vm_releases(app: StagekeeperApplication, deployment: Deployment) -> list[Aggregate]:
    """The VM claims of a captured deployment, released (its addresses are released with every deployment's)."""
    if not deployment.captured:
        return []
    released: list[Aggregate] = []
    for machine in deployment.machines:
        vm_id = machine.get("captured_vm_id")
        if vm_id:
            claim = _find(app, VM_CLAIMS, VM_SCOPE, vm_id)
            if claim is not None and claim.owner_id == uuid5(deployment.id, machine["name"]):
                claim.release()
                released.append(claim)
    return released


def _find(app: StagekeeperApplication, kind: str, scope: str, name: str) -> NameClaim | None:
    return _get(app, NameClaim.id_for(kind, scope, name))


def _get(app: StagekeeperApplication, claim_id: UUID) -> NameClaim | None:
    try:
        claim: Aggregate = app.repository.get(claim_id)
    except AggregateNotFoundError:
        return None
    assert isinstance(claim, NameClaim)
    return claim
