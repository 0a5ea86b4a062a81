"""Address assignment: stage-pool IPs and VMware MACs, made unique by claims in the event store.

The claims and the deployment's AddressesAssigned event are saved together, so an address is
never held without the deployment knowing it (undeploy releases exactly what it recorded), and
two deployments racing for one address cannot both win it.

IP claims are scoped by the address alone (`IPV4_SCOPE`): whichever pool, stage or service hands an
address out, one claim decides who holds it. Stores written before this held IP claims scoped by
their pool's CIDR; such a claim can still be live, so an address whose new claim does not exist yet
is also looked up under every CIDR that could hold it (/0-/30, the pool sizes ever accepted), and
undeploy releases whichever of the two the machine holds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.addressing import candidate_ips, candidate_macs
from domain.application import Outcome, StagekeeperApplication
from domain.commands import fencing
from domain.deployment import Deployment
from domain.errors import (
    AddressExhaustedError,
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from domain.names import NameClaim
from domain.service import Service

IP_CLAIMS = "ip"
MAC_CLAIMS = "mac"
IPV4_SCOPE = "ipv4"
_LEGACY_PREFIXES = range(31)  # pools were /30 or larger
# What a step may refuse only because the deployment in hand is older than the stored one.
STALE_REFUSALS = (ConflictError, NotFoundError, PreconditionFailedError, ValidationError)


class AddressCommands(StagekeeperApplication):
    def assign_addresses(
        self,
        deployment_id: UUID,
        actor: str,
        in_hand: Deployment | None = None,
        before: Callable[[Deployment], None] | None = None,
        after: Callable[[Deployment], None] | None = None,
    ) -> Deployment:
        """Give every machine of the deployment its addresses, in one write (idempotent); the
        deployment as written. `before` / `after`: steps of the deployment decided together with
        its addresses (starting provisioning; recording where the machines go), saved in the same
        write. `in_hand`: the deployment as the caller last wrote it, tried first without reading it
        again; a stale one loses the version race (or is refused) and the write is decided again on
        a fresh read, as in record_step."""
        if in_hand is not None and not in_hand.pending_events:
            try:
                return self._assign_all(in_hand, actor, before, after).value
            except (IntegrityError, *STALE_REFUSALS):
                pass  # stale: decided again below, on the deployment as it is stored now

        def attempt() -> Outcome[Deployment]:
            return self._assign_all(self.load(Deployment, deployment_id, "deployment"), actor, before, after)

        return self.retrying(attempt).value

    def _assign_all(
        self,
        deployment: Deployment,
        actor: str,
        before: Callable[[Deployment], None] | None = None,
        after: Callable[[Deployment], None] | None = None,
    ) -> Outcome[Deployment]:
        if before is not None:
            before(deployment)
        service = self.load(Service, deployment.service_id, "service")
        claims: list[NameClaim] = []
        taken: set[tuple[str, str, str]] = set()  # claimed earlier in this same write
        if deployment.fence is not None:
            claims.extend(self._assign_fenced(deployment, service, actor, taken))
        else:
            pending = [m["name"] for m in deployment.machines if m.get("addressing") is None]
            absent = self._absent_first_candidates(deployment, service, pending)
            for name in pending:
                claims.extend(self._assign(deployment, service, name, actor, taken, absent))
        if after is not None:
            after(deployment)
        return Outcome(deployment, self.commit(deployment, *claims))

    def _absent_first_candidates(self, deployment: Deployment, service: Service, names: list[str]) -> set[UUID]:
        """Of the claims each machine tries first (its first IP of the first pool, with the legacy
        CIDR-scoped claims of that IP, and its first MAC on each NIC), those that do not exist, in
        one read: nearly always all of them, so a deployment's addresses cost one read, not four
        per machine. A claim another deployment creates after this read makes the commit conflict
        (a new claim is version 1), and the retried write reads again."""
        stage = service.stage(deployment.stage)
        pools = stage.get("ip_pools", [])
        ids: list[UUID] = []
        for name in names:
            spec = deployment.machine(name)["spec"]
            if spec["customization"]["ip_mode"] == "static-pool" and pools:
                ip = next(iter(candidate_ips(pools[0], f"{deployment.id}/{name}")), None)
                if ip is not None:
                    ids.append(NameClaim.id_for(IP_CLAIMS, IPV4_SCOPE, ip))
                    ids.extend(claim_id for _, claim_id in _legacy_claims(ip))
            for index, nic in enumerate(spec["nics"]):
                mac = next(iter(candidate_macs(f"{deployment.id}/{name}/{index}")), None)
                if mac is not None:
                    ids.append(NameClaim.id_for(MAC_CLAIMS, nic["network"], mac))
        if not ids:
            return set()
        return set(ids) - self.existing(ids)

    def _assign_fenced(
        self, deployment: Deployment, service: Service, actor: str, taken: set[tuple[str, str, str]]
    ) -> list[NameClaim]:
        """The machines' own addresses (unclaimed, inside the fence), then VLANs and external IPs."""
        stage = service.stage(deployment.stage)
        internal = fencing.internal_addressing(deployment, stage)
        for name, addressing in internal.items():
            if deployment.machine(name).get("addressing") is None:
                deployment.record_addresses(name, addressing, actor)
        if deployment.fence_planned:
            return []

        def claim(kind: str, scope: str, name: str, owner: UUID) -> NameClaim | None:
            return self._try_claim(kind, scope, name, owner, taken)

        networks, gateway, nat, claims = fencing.plan(deployment, stage, internal, claim)
        deployment.record_fence_plan(networks, gateway, nat, actor)
        return claims

    def _try_claim(
        self,
        kind: str,
        scope: str,
        name: str,
        owner: UUID,
        taken: set[tuple[str, str, str]],
        absent: frozenset[UUID] | set[UUID] = frozenset(),
    ) -> NameClaim | None:
        """A claim of `name` for `owner`, or None if it is taken. `absent`: claims known (read in
        this same attempt) not to exist, which need no read of their own."""
        key = (kind, scope, name.casefold())
        if key in taken:
            return None
        claim_id = NameClaim.id_for(kind, scope, name)
        if claim_id in absent:
            if kind == IP_CLAIMS and self._held_before(name, owner, absent):
                return None
            taken.add(key)
            return NameClaim(kind=kind, scope=scope, name=name, owner_id=owner)
        if kind == IP_CLAIMS and _find_claim(self, kind, scope, name) is None and self._held_before(name, owner):
            return None
        try:
            claim = self.claim_name(kind, scope, name, owner)
        except ConflictError:
            return None
        taken.add(key)
        return claim

    def _held_before(self, ip: str, owner: UUID, absent: frozenset[UUID] | set[UUID] = frozenset()) -> bool:
        """Whether another machine holds `ip` by a claim scoped by its pool's CIDR (older stores).
        Only asked while the address has no claim of its own: once one exists, it was written after
        this check found no live old claim, and old-scope claims are never written any more."""
        legacy = _legacy_claims(ip)
        if all(claim_id in absent for _, claim_id in legacy):
            return False  # read already, in the same attempt: none exists
        present = self.existing([claim_id for _, claim_id in legacy])
        for scope, claim_id in legacy:
            if claim_id not in present:
                continue  # one read for all of them: nearly always none exists
            claim = _find_claim(self, IP_CLAIMS, scope, ip)
            if claim is not None and claim.owner_id is not None and claim.owner_id != owner:
                return True
        return False

    def _assign(
        self,
        deployment: Deployment,
        service: Service,
        name: str,
        actor: str,
        taken: set[tuple[str, str, str]],
        absent: frozenset[UUID] | set[UUID] = frozenset(),
    ) -> list[NameClaim]:
        deployment_id = deployment.id
        machine = deployment.machine(name)
        stage = service.stage(deployment.stage)
        spec = machine["spec"]
        owner = uuid5(deployment_id, name)
        claims: list[NameClaim] = []
        addressing: dict[str, Any] = {"ip": None, "cidr": None, "prefix_length": None, "gateway": None, "dns": []}
        pools = stage.get("ip_pools", [])
        if spec["customization"]["ip_mode"] == "static-pool" and pools:
            for pool in pools:
                claim = next(
                    (
                        c
                        for ip in candidate_ips(pool, f"{deployment_id}/{name}")
                        if (c := self._try_claim(IP_CLAIMS, IPV4_SCOPE, ip, owner, taken, absent)) is not None
                    ),
                    None,
                )
                if claim is not None:
                    claims.append(claim)
                    addressing.update(
                        ip=claim.name, cidr=pool["cidr"], prefix_length=int(pool["cidr"].split("/")[1]),
                        gateway=pool["gateway"], dns=pool["dns"],
                    )  # fmt: skip
                    break
            else:
                raise AddressExhaustedError(_exhausted(stage["name"], [p["cidr"] for p in pools]), field="ip_pools")
        macs = []
        for index, nic in enumerate(spec["nics"]):
            claim = next(
                (
                    c
                    for mac in candidate_macs(f"{deployment_id}/{name}/{index}")
                    if (c := self._try_claim(MAC_CLAIMS, nic["network"], mac, owner, taken, absent)) is not None
                ),
                None,
            )
            if claim is None:
                raise AddressExhaustedError(f"no free MAC found for {name} on network '{nic['network']}'")
            claims.append(claim)
            macs.append({"network": nic["network"], "mac": claim.name})
        addressing["macs"] = macs
        deployment.record_addresses(name, addressing, actor)
        return claims


def _exhausted(stage: str, cidrs: list[str]) -> str:
    if len(cidrs) == 1:
        return f"stage {stage}'s IP pool {cidrs[0]} has no free address"
    return f"stage {stage}'s IP pools {', '.join(cidrs)} have no free address"


def ip_releases(app: StagekeeperApplication, owner: UUID, addressing: dict[str, Any]) -> list[NameClaim]:
    """The claims by which machine `owner` holds its IP, released: the address's own claim, or the
    pool-CIDR-scoped claim of a store written before addresses were scoped alone."""
    released = []
    for scope in (IPV4_SCOPE, addressing["cidr"]):
        claim = _find_claim(app, IP_CLAIMS, scope, addressing["ip"])
        if claim is not None and claim.owner_id == owner:
            claim.release()
            released.append(claim)
    return released


def _find_claim(app: StagekeeperApplication, kind: str, scope: str, name: str) -> NameClaim | None:
    try:
        claim: Aggregate = app.repository.get(NameClaim.id_for(kind, scope, name))
    except AggregateNotFoundError:
        return None
    assert isinstance(claim, NameClaim)
    return claim


@lru_cache(maxsize=4096)
def _legacy_claims(ip: str) -> tuple[tuple[str, UUID], ...]:
    """(scope, claim id) of every CIDR-scoped claim that could hold `ip` in an older store. Asked
    twice an address in a deploy's addresses' write (31 uuid5 each, its main CPU cost): kept."""
    return tuple((scope, NameClaim.id_for(IP_CLAIMS, scope, ip)) for scope in _legacy_scopes(ip))


def _legacy_scopes(ip: str) -> list[str]:
    # With integer masks: building 31 IPv4Network objects per address was a deploy's main CPU cost here.
    value = int(ipaddress.IPv4Address(ip))
    return [
        f"{ipaddress.IPv4Address(value & (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF)}/{prefix}"
        for prefix in _LEGACY_PREFIXES
    ]
