"""Stop the line: one switch, held by administrators, that refuses every lifecycle command everywhere
until it is lifted; each refusal carries the reason it was pulled for."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import ConflictError

STOP_LINE_ID = uuid5(NAMESPACE_URL, "https://stagekeeper.invalid/stop-the-line")


class StopTheLine(Aggregate):
    TOPIC = "stagekeeper:StopTheLine"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:StopTheLine.Created"

    @staticmethod
    def create_id() -> UUID:
        return STOP_LINE_ID

    @event("Installed", topic="stagekeeper:StopTheLine.Installed")
    def __init__(self) -> None:
        self.on = False
        self.reason: str | None = None
        self.by: str | None = None
        self.since: str | None = None

    def pull(self, actor: str, reason: str, at: str) -> None:
        if self.on:
            raise ConflictError(f"the line is already stopped by {self.by}: {self.reason}", field="reason")
        self._started(actor=actor, reason=reason, at=at)

    @event("Started", topic="stagekeeper:StopTheLine.Started")
    def _started(self, actor: str, reason: str | None, at: str) -> None:
        self.on, self.by, self.reason, self.since = True, actor, reason, at

    def lift(self, actor: str, reason: str | None) -> None:
        if not self.on:
            raise ConflictError("the line is not stopped", field="reason")
        self._lifted(actor=actor, reason=reason)

    @event("Lifted", topic="stagekeeper:StopTheLine.Lifted")
    def _lifted(self, actor: str, reason: str | None) -> None:
        self.on, self.by, self.reason, self.since = False, None, None, None
