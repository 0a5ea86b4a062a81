"""The swap: a tested copy takes the place of the deployment it copies, and swap-back.

Both deployments are written together at each end of the swap (one wins a race, the other is
refused), so neither can be promoted, undeployed or swapped elsewhere meanwhile. The last write
also moves the production addresses' claims to the deployment now using them (the fence kept
the copy's IPs and MACs equal to the ones it copied) and releases the copy's fence claims.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain.application import Outcome, StagekeeperApplication
from domain.commands.addresses import IP_CLAIMS, IPV4_SCOPE, MAC_CLAIMS
from domain.deployment import Deployment
from domain.errors import ConflictError, InvalidTransitionError, ValidationError
from domain.names import NameClaim
from domain.service import Service


def check_swap(incoming: Deployment, outgoing: Deployment) -> None:
    if incoming.id == outgoing.id:
        raise ValidationError("a deployment cannot replace itself", field="replaces")
    if incoming.service_id != outgoing.service_id:
        raise ValidationError("replaces must be a deployment of the same service", field="replaces")
    if incoming.copy_of is None or incoming.copy_of["deployment_id"] != str(outgoing.id):
        raise ConflictError(
            f"replaces: deployment {incoming.id} is not a copy of deployment {outgoing.id}; "
            "only a copy of the replaced deployment can take its place",
            field="replaces",
        )
    if incoming.fence is None and incoming.replaced_by != str(outgoing.id):
        # Only a fence keeps the copied IPs and MACs; an unfenced copy has its own stage's addresses.
        # A copy that already took this deployment's place and was swapped back (kept, off) left
        # its fence then and still has the production addresses: it may take the place again.
        raise ConflictError(
            f"replaces: deployment {incoming.id} is an unfenced copy with addresses of its own stage; only a "
            f"fenced copy keeps the IPs and MACs of deployment {outgoing.id} and can take its place",
            field="replaces",
        )


def claims_moving(app: StagekeeperApplication, source: Deployment, target: Deployment) -> list[Aggregate]:
    """The IP and MAC claims `source`'s machines hold on addresses `target`'s same machines use,
    handed over to `target` (released and claimed again in one write)."""
    moved: list[Aggregate] = []
    for machine in target.machines:
        mine = machine.get("addressing") or {}
        theirs = (source.machine(machine["name"]) if _has(source, machine["name"]) else {}).get("addressing") or {}
        keys = []
        if mine.get("ip") and mine.get("ip") == theirs.get("ip"):
            keys.append((IP_CLAIMS, IPV4_SCOPE, mine["ip"]))
        their_macs = {(n["network"], n["mac"]) for n in theirs.get("macs", [])}
        keys += [
            (MAC_CLAIMS, n["network"], n["mac"]) for n in mine.get("macs", []) if (n["network"], n["mac"]) in their_macs
        ]
        old, new = uuid5(source.id, machine["name"]), uuid5(target.id, machine["name"])
        for kind, scope, name in keys:
            claim = _claim(app, kind, scope, name)
            if claim is not None and claim.owner_id == old:
                claim.release()
                claim.reclaim(new, name)
                moved.append(claim)
    return moved


def _has(deployment: Deployment, name: str) -> bool:
    return any(m["name"] == name for m in deployment.machines)


def _claim(app: StagekeeperApplication, kind: str, scope: str, name: str) -> NameClaim | None:
    try:
        claim: Aggregate = app.repository.get(NameClaim.id_for(kind, scope, name))
    except AggregateNotFoundError:
        return None
    return claim if isinstance(claim, NameClaim) else None


def start(
    incoming: Deployment, outgoing: Deployment, service: Service, keep_previous: bool, back: bool, actor: str,
    reason: str | None, destroy_vms: bool | None = None,
) -> list[Aggregate]:  # fmt: skip
    """Both deployments enter the swap; the incoming one is admitted to the outgoing one's stage.
    A captured outgoing deployment not kept lets go of its VMs unless `destroy_vms` (undeploy's rule)."""
    to_pool = service.stage(outgoing.stage)["resource_pool"]
    incoming.request_swap_in(outgoing, to_pool, keep_previous, back, actor, reason)
    outgoing.request_swap_out(incoming, keep_previous, back, actor, reason, destroy_vms)
    if incoming.target_stage is not None:
        service.admit(incoming.id, outgoing.stage, actor)
    return [incoming, outgoing, service]


def fail(app: StagekeeperApplication, incoming_id: UUID, reason: str, actor: str) -> None:
    """Give the swap up in one write: both deployments deployed again where they stand, and the
    copy no longer admitted to the replaced one's stage."""

    def attempt() -> Outcome[None]:
        incoming = app.load(Deployment, incoming_id, "deployment")
        if incoming.swap is None:
            return Outcome(None, 0)  # given up already (a restarted worker)
        outgoing = app.load(Deployment, UUID(incoming.swap["partner"]), "deployment")
        admitted = incoming.target_stage
        incoming.fail_swap(reason, actor)
        outgoing.fail_swap(reason, actor)
        others: list[Aggregate] = []
        if admitted is not None:
            service = app.load(Service, incoming.service_id, "service")
            service.release(incoming.id, admitted, actor=actor)
            others.append(service)
        return Outcome(None, app.commit(incoming, outgoing, *others))

    app.retrying(attempt)


def previous_of(previous: Deployment) -> UUID:
    """The deployment that replaced `previous`, which swap-back puts back."""
    if previous.replaced_by is None:
        raise InvalidTransitionError("this deployment was not replaced by a swap (nothing to swap back)")
    return UUID(previous.replaced_by)


__all__ = ["Outcome", "check_swap", "claims_moving", "fail", "previous_of", "start"]
