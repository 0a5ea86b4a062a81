"""The pool plan: every service's resource pool paths in one aggregate, so no service takes a pool
that holds, or sits inside, another service's pool (the cluster root beside pools under it).

Equal paths are kept apart by the resource-pool NameClaims (domain/commands/placement.py); nesting
cannot be found by a claim's id, so each change of a service's pools saves this aggregate in the
same write as the service: two services racing to take nested pools both write the plan's next
version and the store accepts one; the other is re-read and refused, naming the other stage and
service. Like the AddressPlan, it serialises pool changes installation-wide (rare by nature), and a
service whose pools were mapped before the plan existed is unknown to it until its stages change.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import ConflictError
from domain.values import normalise_key

POOL_PLAN_ID = uuid5(NAMESPACE_URL, "https://stagekeeper.invalid/pool-plan")


def nested(one: str, other: str) -> str | None:
    """'is inside' if pool `one` lies under `other`, 'holds' if `other` lies under `one`, else None."""
    a, b = normalise_key(one).rstrip("/"), normalise_key(other).rstrip("/")
    if a.startswith(b + "/"):
        return "is inside"
    if b.startswith(a + "/"):
        return "holds"
    return None


def ancestors(path: str) -> list[str]:
    """The pools above `path`, up to its cluster's root pool (/<dc>/host/<cluster>/Resources)."""
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:n]) for n in range(4, len(parts))]


class PoolPlan(Aggregate):
    TOPIC = "stagekeeper:PoolPlan"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:PoolPlan.Created"

    @staticmethod
    def create_id() -> UUID:
        return POOL_PLAN_ID

    @event("Opened", topic="stagekeeper:PoolPlan.Opened")
    def __init__(self) -> None:
        # service id -> {"service": name, "pools": {pool path: stage name}}
        self.services: dict[str, dict[str, Any]] = {}

    def nesting_of(self, service_id: UUID, path: str) -> str | None:
        """How `path` nests with another service's pool ("is inside resource pool '...' of stage 'x'
        of service 'y'", or "holds ..."), if it does."""
        for other_id, entry in self.services.items():
            if other_id == str(service_id):
                continue
            for other, stage in entry["pools"].items():
                if (how := nested(path, other)) is not None:
                    return f"{how} resource pool '{other}' of stage '{stage}' of service '{entry['service']}'"
        return None

    def set_service(
        self, service_id: UUID, name: str, pools: dict[str, str], mapped: frozenset[str], field: str
    ) -> None:
        """Record a service's pools (path -> stage); refused if one just `mapped` nests with another
        service's (a nesting recorded before this rule does not block unrelated changes)."""
        for path in sorted(mapped):
            if (where := self.nesting_of(service_id, path)) is not None:
                raise ConflictError(f"{field}: resource pool '{path}' {where}", field=field)
        entry = {"service": name, "pools": pools} if pools else None
        if self.services.get(str(service_id)) != entry:
            self._service_set(service_id=service_id, service_name=name, pools=pools)

    @event("ServicePoolsSet", topic="stagekeeper:PoolPlan.ServicePoolsSet")
    def _service_set(self, service_id: UUID, service_name: str, pools: dict[str, str]) -> None:
        if pools:
            self.services[str(service_id)] = {"service": service_name, "pools": pools}
        else:
            self.services.pop(str(service_id), None)
