"""Unique names enforced inside the event store.

Each claimed name is an aggregate whose id is a uuid5 of (kind, scope, name). Two concurrent
creates of the same name both try to write version 1 of that aggregate: the store accepts one
and raises IntegrityError for the other, so uniqueness never depends on a read model.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import ConflictError
from domain.values import normalise_key

_NAMESPACE = uuid5(NAMESPACE_URL, "https://stagekeeper.invalid/names")


class NameClaim(Aggregate):
    """Who currently holds one unique name (None once released)."""

    TOPIC = "stagekeeper:NameClaim"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:NameClaim.Created"

    @staticmethod
    def create_id(kind: str, scope: str, name: str) -> UUID:
        return NameClaim.id_for(kind, scope, name)

    @staticmethod
    def id_for(kind: str, scope: str, name: str) -> UUID:
        return uuid5(_NAMESPACE, f"{kind}\x00{scope}\x00{normalise_key(name)}")

    @event("Claimed", topic="stagekeeper:NameClaim.Claimed")
    def __init__(self, kind: str, scope: str, name: str, owner_id: UUID) -> None:
        self.kind = kind
        self.scope = scope
        self.name = name
        self.owner_id: UUID | None = owner_id

    def reclaim(self, owner_id: UUID, name: str) -> None:
        if self.owner_id is not None and self.owner_id != owner_id:
            raise ConflictError(f"the {self.kind} name '{name}' is already taken", field="name")
        if self.owner_id != owner_id:
            self._reclaimed(owner_id=owner_id, name=name)

    @event("Reclaimed", topic="stagekeeper:NameClaim.Reclaimed")
    def _reclaimed(self, owner_id: UUID, name: str) -> None:
        self.owner_id = owner_id
        self.name = name

    def release(self) -> None:
        if self.owner_id is not None:
            self._released()

    @event("Released", topic="stagekeeper:NameClaim.Released")
    def _released(self) -> None:
        self.owner_id = None
