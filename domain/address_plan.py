"""The address plan: every service's stage IP ranges in one aggregate, so no two stages' ranges
overlap (of two services, or of one).

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


def _overlapping(first: int, last: int, pools: list[dict[str, Any]]) -> str | None:
    for other in pools:
        other_first, other_last = _span(other)
        if first <= other_last and other_first <= last:
            return f"{other['first']}-{other['last']}"
    return None


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

    def owner_of(
        self, service_id: UUID, name: str, stage: str, pool: dict[str, Any], stages: dict[str, list[dict[str, Any]]]
    ) -> str | None:
        """Who else hands out addresses of `pool` ("stage 'x' of service 'y' (first-last)"), if anyone:
        any stage of another service, or another of this service's `stages` (its ranges to be)."""
        first, last = _span(pool)
        for other_id, entry in self.services.items():
            if other_id == str(service_id):
                continue  # this service's ranges are the new `stages`, checked below
            for other_stage, pools in entry["stages"].items():
                if (found := _overlapping(first, last, pools)) is not None:
                    return f"stage '{other_stage}' of service '{entry['service']}' ({found})"
        for other_stage, pools in stages.items():
            if other_stage != stage and (found := _overlapping(first, last, pools)) is not None:
                return f"stage '{other_stage}' of service '{name}' ({found})"
        return None

    def set_service(self, service_id: UUID, name: str, stages: dict[str, list[dict[str, Any]]], field: str) -> None:
        """Record a service's stage ranges; refused if one overlaps a range of another stage, of this
        service or any other. Ranges a stage already held are not checked again, so an overlap
        recorded before this rule does not block unrelated changes (claims keep its addresses apart)."""
        held = self.services.get(str(service_id), {}).get("stages", {})
        for stage, pools in stages.items():
            for pool in pools:
                if pool in held.get(stage, []):
                    continue
                owner = self.owner_of(service_id, name, stage, pool, stages)
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
