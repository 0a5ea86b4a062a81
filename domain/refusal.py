"""Refused commands, kept for the audit log (security events)."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event


class Refusal(Aggregate):
    """One refused command: who tried what, on which object, and why it was refused."""

    TOPIC = "stagekeeper:Refusal"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:Refusal.Created"

    @event("Recorded", topic="stagekeeper:Refusal.Recorded")
    def __init__(
        self,
        command: str,
        code: str,
        service_id: UUID | None,
        target_id: UUID | None,
        actor: str,
        reason: str | None,
    ) -> None:
        self.command = command
        self.code = code
        self.service_id = service_id
        self.target_id = target_id
        self.actor = actor
        self.reason = reason
