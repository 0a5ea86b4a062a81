"""`stagekeeper audit verify`: recompute the hash chain from the event store and compare it
with the audit log, reporting the first position where a stored event was altered, removed
or inserted after the audit recorded it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from eventsourcing.persistence import Notification

from projections.chain import GENESIS, link
from projections.follower import EventSource
from projections.store import ReadStore, Row


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    head_hash: str
    problem: str | None = None  # "altered" | "removed" | "inserted"
    position: int | None = None
    unaudited: int = 0  # events newer than the audit log (not yet projected)
    quarantined: tuple[int, ...] = ()  # events the audit read model could not record (outside the chain)

    def describe(self) -> str:
        if self.ok:
            tail = f"; {self.unaudited} newer event(s) not yet in the audit log" if self.unaudited else ""
            if self.quarantined:
                tail += f"; quarantined, outside the chain: positions {', '.join(map(str, self.quarantined))}"
            return f"OK: {self.checked} events verified, chain head {self.head_hash}{tail}"
        return f"TAMPERED: stored event at position {self.position} was {self.problem} (after {self.checked} good)"


def _events(source: EventSource, page: int = 1000) -> Iterator[Notification]:
    start = 1
    while True:
        batch = source.select_notifications(start, page)
        if not batch:
            return
        yield from batch
        start = batch[-1].id + 1


def verify(source: EventSource, store: ReadStore) -> Verdict:
    # An event the audit read model quarantined has no row and no link: the chain passes over it,
    # and the verdict names it.
    passed = {int(r["position"]) for r in store.query("SELECT position FROM sk_quarantine WHERE name = 'audit'")}
    audit: Iterator[Row] = store.stream("SELECT position, hash FROM sk_audit ORDER BY position", (), batch=5000)
    events = _events(source)
    previous = GENESIS
    checked = 0
    skipped: list[int] = []
    entry = next(audit, None)
    event = next(events, None)
    while entry is not None:
        position = int(entry["position"])
        if event is not None and event.id < position and event.id in passed:
            skipped.append(event.id)
            event = next(events, None)
            continue
        if event is None or position < event.id:
            return Verdict(False, checked, previous, "removed", position)
        if event.id < position:
            return Verdict(False, checked, previous, "inserted", event.id)
        previous = link(previous, event)
        if previous != entry["hash"]:
            return Verdict(False, checked, previous, "altered", event.id)
        checked += 1
        entry = next(audit, None)
        event = next(events, None)
    unaudited = 0
    while event is not None:
        if event.id in passed:
            skipped.append(event.id)
        else:
            unaudited += 1
        event = next(events, None)
    return Verdict(True, checked, previous, unaudited=unaudited, quarantined=tuple(skipped))
