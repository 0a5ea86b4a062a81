"""The address plan: every service's stage IP ranges in one aggregate, so no two services' ranges
overlap.

Each change of a service's IP pools saves this aggregate in the same write as the service, so two
services racing to take overlapping ranges both write the plan's next version and the store
accepts one: the other is re-read and refused, naming the range's owner. Limits: it is one
aggregate for the whole installation (IP-pool changes are serialised, which is fine for how
rarely they happen), and stages whose pools were set before the plan existed are unknown to it
until their pools are set again.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import ConflictError

PLAN_ID = uuid5(NAMESPACE_URL, "https://stagekeeper.invalid/address-plan")


def _span(pool: dict[str, Any]) -> tuple[int, int]:
    """The addresses a pool hands out, as integers (first and last, inclusive)."""
    return int(ipaddress.IPv4Address(pool["first"])), int(ipaddress.IPv4Address(pool["last"]))


class AddressPlan(Aggregate):
    TOPIC = "stagekeeper:AddressPlan"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:AddressPlan.Created"

    @staticmethod
    def create_id() -> UUID:
        return PLAN_ID

    @event("Opened", topic="stagekeeper:AddressPlan.Opened")
    def __init__(self) -> None:
        # service id -> {"service": name, "stages": {stage name: [ip pool, ...]}}
        self.services: dict[str, dict[str, Any]] = {}

    def owner_of(self, service_id: UUID, pool: dict[str, Any]) -> str | None:
        """Who else hands out addresses of `pool` ("stage 'x' of service 'y' (cidr)"), if anyone."""
        first, last = _span(pool)
        for other_id, entry in self.services.items():
            if other_id == str(service_id):
                continue
            for stage, pools in entry["stages"].items():
                for other in pools:
                    other_first, other_last = _span(other)
                    if first <= other_last and other_first <= last:
                        return f"stage '{stage}' of service '{entry['service']}' ({other['first']}-{other['last']})"
        return None

    def set_service(self, service_id: UUID, name: str, stages: dict[str, list[dict[str, Any]]], field: str) -> None:
        """Record a service's stage ranges; refused if one overlaps another service's."""
        for stage, pools in stages.items():
            for pool in pools:
                owner = self.owner_of(service_id, pool)
                if owner is not None:
                    raise ConflictError(
                        f"{field}: {pool['first']}-{pool['last']} of stage '{stage}' overlaps the IP pool of {owner}",
                        field=field,
                    )
        entry = {"service": name, "stages": stages} if any(stages.values()) else None
        if self.services.get(str(service_id)) != entry:
            self._service_set(service_id=service_id, service_name=name, stages=stages)

    @event("ServiceRangesSet", topic="stagekeeper:AddressPlan.ServiceRangesSet")
    def _service_set(self, service_id: UUID, service_name: str, stages: dict[str, list[dict[str, Any]]]) -> None:
        if any(stages.values()):
            self.services[str(service_id)] = {"service": service_name, "stages": stages}
        else:
            self.services.pop(str(service_id), None)
