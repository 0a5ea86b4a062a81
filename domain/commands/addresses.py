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
from functools import lru_cache, partial
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain.addressing import candidate_ips, candidate_macs
from domain.application import Outcome, StagekeeperApplication
from domain.commands import fencing
from domain.deployment import Deployment
from domain.errors import AddressExhaustedError, ConflictError
from domain.names import NameClaim
from domain.service import Service

IP_CLAIMS = "ip"
MAC_CLAIMS = "mac"
IPV4_SCOPE = "ipv4"
_LEGACY_PREFIXES = range(31)  # pools were /30 or larger


class AddressCommands(StagekeeperApplication):
    def assign_addresses(self, deployment_id: UUID, actor: str) -> None:
        """Give every machine of the deployment its addresses, in one write (idempotent)."""
        self.retrying(partial(self._assign_all, deployment_id, actor))

    def _assign_all(self, deployment_id: UUID, actor: str) -> Outcome[None]:
        deployment = self.load(Deployment, deployment_id, "deployment")
        service = self.load(Service, deployment.service_id, "service")
        claims: list[NameClaim] = []
        taken: set[tuple[str, str, str]] = set()  # claimed earlier in this same write
        if deployment.fence is not None:
            claims.extend(self._assign_fenced(deployment, service, actor, taken))
            return Outcome(None, self.commit(deployment, *claims))
        pending = [m["name"] for m in deployment.machines if m.get("addressing") is None]
        absent = self._absent_first_choices(deployment, service, pending)
        for name in pending:
            claims.extend(self._assign(deployment, service, name, actor, taken, absent))
        return Outcome(None, self.commit(deployment, *claims))

    def _absent_first_choices(self, deployment: Deployment, service: Service, machines: list[str]) -> set[UUID]:
        """Which claims of the machines' first-choice addresses (and of the old scopes of each IP)
        do not exist, in one read: each is nearly always free, and asking claim by claim costs
        several queries per machine. Read in the same attempt as the write: a claim made since
        makes the write fail and the attempt start over (as any claim race does)."""
        stage = service.stage(deployment.stage)
        ids: list[UUID] = []
        for name in machines:
            spec = deployment.machine(name)["spec"]
            if spec["customization"]["ip_mode"] == "static-pool":
                for pool in stage.get("ip_pools", []):
                    ip = next(candidate_ips(pool, f"{deployment.id}/{name}"), None)
                    if ip is not None:
                        ids.append(NameClaim.id_for(IP_CLAIMS, IPV4_SCOPE, ip))
                        ids.extend(NameClaim.id_for(IP_CLAIMS, scope, ip) for scope in _legacy_scopes(ip))
            for index, nic in enumerate(spec["nics"]):
                mac = next(candidate_macs(f"{deployment.id}/{name}/{index}"))
                ids.append(NameClaim.id_for(MAC_CLAIMS, nic["network"], mac))
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
        absent: set[UUID] | None = None,
    ) -> NameClaim | None:
        """`absent`: claim ids just read as not existing (no need to read them again)."""
        absent = absent or set()
        key = (kind, scope, name.casefold())
        if key in taken:
            return None
        claim_id = NameClaim.id_for(kind, scope, name)
        unclaimed = claim_id in absent or (kind == IP_CLAIMS and _find_claim(self, kind, scope, name) is None)
        if kind == IP_CLAIMS and unclaimed and self._held_before(name, owner, absent):
            return None
        if claim_id in absent:
            # Made as claim_name makes a claim that does not exist (a race fails the write).
            claim = NameClaim(kind=kind, scope=scope, name=name, owner_id=owner)
        else:
            try:
                claim = self.claim_name(kind, scope, name, owner)
            except ConflictError:
                return None
        taken.add(key)
        return claim

    def _held_before(self, ip: str, owner: UUID, absent: set[UUID] | None = None) -> bool:
        """Whether another machine holds `ip` by a claim scoped by its pool's CIDR (older stores).
        Only asked while the address has no claim of its own: once one exists, it was written after
        this check found no live old claim, and old-scope claims are never written any more."""
        scopes = _legacy_scopes(ip)
        ids = [NameClaim.id_for(IP_CLAIMS, scope, ip) for scope in scopes]
        if absent and all(i in absent for i in ids):
            return False  # none of them exists (read in this attempt)
        present = self.existing(ids)
        for scope in scopes:
            if NameClaim.id_for(IP_CLAIMS, scope, ip) not in present:
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
        absent: set[UUID] | None = None,
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
def _legacy_scopes(ip: str) -> tuple[str, ...]:
    """The CIDR of every pool size that could hold `ip` (as str(IPv4Network(ip/prefix, strict=False)))."""
    value = int(ipaddress.IPv4Address(ip))
    scopes = []
    for prefix in _LEGACY_PREFIXES:
        network = value & ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF)
        scopes.append(f"{network >> 24}.{(network >> 16) & 0xFF}.{(network >> 8) & 0xFF}.{network & 0xFF}/{prefix}")
    return tuple(scopes)
