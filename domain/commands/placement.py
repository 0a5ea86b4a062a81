"""Where services live: each resource pool belongs to one service, no service's pool holds or sits
inside another service's pool, and no two stages' IP pools overlap. All are held in the event store
and saved in the same write as the service.

Resource pools use the NameClaim pattern (domain/names.py): a claim per pool path, owned by the
service, taken when a stage maps to the pool and released when no stage of the service maps to it
any more (stage removed or remapped, service retired). Nesting is decided by the PoolPlan (every
service's pool paths), and for pools above a new one also by their claims, which older stores hold.
IP pools go into the AddressPlan. Services registered before these rules hold no claims and are not
in the plans until their stages change: the rules protect every mapping made from then on, and a
nesting that existed before is not re-checked until one of its pools is mapped again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from domain.address_plan import PLAN_ID, AddressPlan
from domain.application import StagekeeperApplication
from domain.errors import ConflictError
from domain.names import NameClaim
from domain.pool_plan import POOL_PLAN_ID, PoolPlan, ancestors
from domain.service import Service
from domain.values import normalise_key

POOL_CLAIMS = "resource-pool"


@dataclass(frozen=True)
class Placement:
    """A service's pools and IP ranges at one moment (taken before a change, compared after)."""

    name: str
    pools: frozenset[str]
    ip_pools: dict[str, list[dict[str, Any]]]
    pool_stages: dict[str, str]  # pool path -> the (first) stage mapped to it, named in refusals

    @staticmethod
    def of(service: Service) -> Placement:
        if service.retired:
            return Placement(service.name, frozenset(), {}, {})
        pool_stages: dict[str, str] = {}
        for stage in service.stages:
            pool_stages.setdefault(stage["resource_pool"], stage["name"])
        for stage in service.stages:  # a stage's other pools (placement across clusters) are claimed too
            for extra in stage.get("extra_pools", []):
                pool_stages.setdefault(extra, stage["name"])
        return Placement(
            service.name,
            frozenset(pool_stages),
            # Stages without IP pools are left out, so services without any never touch the plan.
            {s["name"]: list(s["ip_pools"]) for s in service.stages if s.get("ip_pools")},
            pool_stages,
        )


class PlacementCommands(StagekeeperApplication):
    def placement_writes(
        self, service: Service, before: Placement | None, pool_field: str = "resource_pool", ip_field: str = "ip_pools"
    ) -> list[Aggregate]:
        """The claims and plan to save with `service`, whose stages changed since `before`."""
        after = Placement.of(service)
        before = before or Placement(service.name, frozenset(), {}, {})
        writes: list[Aggregate] = []
        keys_after = {normalise_key(p) for p in after.pools}
        for path in sorted(after.pools - before.pools):
            writes.append(self._claim_pool(service, path, pool_field))
            self._refuse_claimed_ancestor(service, path, pool_field)
        if after.pool_stages != before.pool_stages or (after.name != before.name and after.pools):
            pool_plan = self._pool_plan()
            pool_plan.set_service(service.id, service.name, after.pool_stages, after.pools - before.pools, pool_field)
            writes.append(pool_plan)
        for path in sorted(before.pools - after.pools):
            if normalise_key(path) not in keys_after:
                writes.extend(self._release_pool(service, path))
        # The plan names each range's service, so a rename of a service holding ranges updates it.
        if after.ip_pools != before.ip_pools or (after.name != before.name and any(after.ip_pools.values())):
            plan = self._address_plan()
            plan.set_service(service.id, service.name, after.ip_pools, ip_field)
            writes.append(plan)
        return writes

    def _claim_pool(self, service: Service, path: str, field: str) -> NameClaim:
        try:
            return self.claim_name(POOL_CLAIMS, "", path, service.id)
        except ConflictError:
            holder = self._holder(self._pool_claim(path), path)
            raise ConflictError(f"{field}: resource pool '{path}' is already used by {holder}", field=field) from None

    def _refuse_claimed_ancestor(self, service: Service, path: str, field: str) -> None:
        # A pool above `path` held by another service: found by its claim's id, in any store.
        for above in ancestors(path):
            claim = self._pool_claim(above)
            if claim is not None and claim.owner_id is not None and claim.owner_id != service.id:
                holder = self._holder(claim, above)
                raise ConflictError(
                    f"{field}: resource pool '{path}' is inside resource pool '{above}' of {holder}", field=field
                )

    def _holder(self, claim: NameClaim | None, path: str) -> str:
        owner = self.load(Service, claim.owner_id, "service") if claim and claim.owner_id else None
        stage = next(
            (
                s["name"] for s in owner.stages
                if normalise_key(path) in {normalise_key(p) for p in [s["resource_pool"], *s.get("extra_pools", [])]}
            ),
            None,
        ) if owner else None  # fmt: skip
        return f"stage '{stage}' of service '{owner.name}'" if owner and stage else "another service"

    def _pool_claim(self, path: str) -> NameClaim | None:
        try:
            claim: Aggregate = self.repository.get(NameClaim.id_for(POOL_CLAIMS, "", path))
        except AggregateNotFoundError:
            return None
        assert isinstance(claim, NameClaim)
        return claim

    def _release_pool(self, service: Service, path: str) -> list[NameClaim]:
        # Only this service's own claim: a pool mapped before claims existed may be claimed by another.
        claim = self._pool_claim(path)
        if claim is None or claim.owner_id != service.id:
            return []
        claim.release()
        return [claim]

    def _address_plan(self) -> AddressPlan:
        try:
            plan: Aggregate = self.repository.get(PLAN_ID)
        except AggregateNotFoundError:
            return AddressPlan()
        assert isinstance(plan, AddressPlan)
        return plan

    def _pool_plan(self) -> PoolPlan:
        try:
            plan: Aggregate = self.repository.get(POOL_PLAN_ID)
        except AggregateNotFoundError:
            return PoolPlan()
        assert isinstance(plan, PoolPlan)
        return plan
