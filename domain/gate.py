"""What the admission gate knows about the request being served, beside the command's own arguments.

The API sets it for each lifecycle request (the caller's groups, `override_freeze`, a promote's
`at`); the process manager sets it while it carries out an approved request. Writes the gate asks
for (an override of a freeze window, the approval's Executed event) join the command's own first
commit, so they land with it or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.permissions import Caller


@dataclass
class GateContext:
    caller: Caller | None = None
    override_freeze: bool = False
    at: str | None = None
    # Set while the process manager carries out this approved request.
    approval_id: UUID | None = None
    # Writes to add to the command's first commit that touches one of `anchors`.
    joins: list[Callable[[], Sequence[Aggregate]]] = field(default_factory=list)
    anchors: set[UUID] = field(default_factory=set)

    def join(self, anchors: Collection[UUID], write: Callable[[], Sequence[Aggregate]]) -> None:
        self.anchors.update(anchors)
        self.joins.append(write)

    def joined(self, ids: Collection[UUID]) -> list[Aggregate]:
        """The writes to add to a commit of `ids` (each built afresh, for a retried attempt)."""
        if not self.joins or self.anchors.isdisjoint(ids):
            return []
        return [aggregate for write in self.joins for aggregate in write()]

    def committed(self, ids: Collection[UUID]) -> None:
        if self.joins and not self.anchors.isdisjoint(ids):
            self.joins.clear()
            self.anchors.clear()
