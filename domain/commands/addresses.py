"""Address assignment: stage-pool IPs and VMware MACs, made unique by claims in the event store.

The claims and the deployment's AddressesAssigned event are saved together, so an address is
never held without the deployment knowing it (undeploy releases exactly what it recorded), and
two deployments racing for one address cannot both win it.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID, uuid5

from domain.addressing import candidate_ips, candidate_macs
from domain.application import Outcome, StagekeeperApplication
from domain.deployment import Deployment
from domain.errors import AddressExhaustedError, ConflictError
from domain.names import NameClaim
from domain.service import Service

IP_CLAIMS = "ip"
MAC_CLAIMS = "mac"


class AddressCommands(StagekeeperApplication):
    def assign_addresses(self, deployment_id: UUID, actor: str) -> None:
        """Give every machine of the deployment its addresses, in one write (idempotent)."""
        self.retrying(partial(self._assign_all, deployment_id, actor))

    def _assign_all(self, deployment_id: UUID, actor: str) -> Outcome[None]:
        deployment = self.load(Deployment, deployment_id, "deployment")
        service = self.load(Service, deployment.service_id, "service")
        claims: list[NameClaim] = []
        taken: set[tuple[str, str, str]] = set()  # claimed earlier in this same write
        for machine in deployment.machines:
            if machine.get("addressing") is None:
                claims.extend(self._assign(deployment, service, machine["name"], actor, taken))
        return Outcome(None, self.commit(deployment, *claims))

    def _try_claim(
        self, kind: str, scope: str, name: str, owner: UUID, taken: set[tuple[str, str, str]]
    ) -> NameClaim | None:
        key = (kind, scope, name.casefold())
        if key in taken:
            return None
        try:
            claim = self.claim_name(kind, scope, name, owner)
        except ConflictError:
            return None
        taken.add(key)
        return claim

    def _assign(
        self, deployment: Deployment, service: Service, name: str, actor: str, taken: set[tuple[str, str, str]]
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
                        if (c := self._try_claim(IP_CLAIMS, pool["cidr"], ip, owner, taken)) is not None
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
                    if (c := self._try_claim(MAC_CLAIMS, nic["network"], mac, owner, taken)) is not None
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
