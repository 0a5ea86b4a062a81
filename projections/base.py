"""What a projection is: tables, and one handler per event topic it reads."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from projections.raw import RawEvent, loads_exact, topic_prefix
from projections.store import Cursor

TOPIC_PREFIX = "stagekeeper:"


def on(*topics: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a method as the handler of events with these topics (without the prefix)."""

    def mark(method: Callable[..., None]) -> Callable[..., None]:
        method.__dict__["_sk_topics"] = topics
        return method

    return mark


class Projection:
    """Subclasses declare `name`, `ddl` (CREATE TABLE/INDEX IF NOT EXISTS) and `@on(...)` handlers.

    A handler receives (event, position, cursor) and writes rows through the cursor; the
    follower commits those rows together with the projection's tracking position.
    """

    name: ClassVar[str]
    ddl: ClassVar[tuple[str, ...]]
    tables: ClassVar[tuple[str, ...]]
    # A raw projection sees every stored event undecoded, through `apply_batch`.
    raw: ClassVar[bool] = False
    # The keys of a stored event's state a raw projection reads (None: it may read any): a reader
    # process (projections/pipeline.py) sends only these across. Name every key `apply_batch` reads.
    reads: ClassVar[frozenset[str] | None] = None
    # Of those, the keys whose value it reads only for its length (`len` of a list): a reader process
    # sends such a list as that many `None`s, unless another read model reads the values themselves.
    sized: ClassVar[frozenset[str]] = frozenset()
    # Per table, the columns whose planner statistics a bulk build gathers (ANALYZE on PostgreSQL):
    # those its queries filter, join or sort on. A table not named here: every column.
    statistics: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Raise it with any change of `ddl` or of what the rows hold: at start-up, a read model
    # built with another version is dropped and rebuilt from position zero (projections/schema.py).
    schema_version: ClassVar[int] = 1

    def apply_batch(self, events: Sequence[RawEvent], cursor: Cursor) -> None:
        raise TypeError(f"{type(self).__name__} is not a raw projection")

    def chain_head(self, cursor: Cursor) -> str | None:
        """The last link of the audit hash chain, for a projection that keeps one (None: it keeps none)."""
        return None

    def start_batch(self) -> None:
        """Forget anything buffered by a batch that did not commit."""

    def committed(self) -> None:
        """The transaction of the batch applied last committed: what it kept for the next one holds."""

    def flush(self, cursor: Cursor) -> None:
        """Write what the handlers of this batch buffered (one statement per table, not per event)."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[Any, int, Cursor], None]] = {}
        # `@on("Deployment.*")`: every topic of that aggregate, those added later included.
        self.prefix_handlers: dict[str, Callable[[Any, int, Cursor], None]] = {}
        for attr in dir(type(self)):
            method = getattr(self, attr)
            for topic in getattr(method, "_sk_topics", ()):
                if topic.endswith(".*"):
                    self.prefix_handlers[TOPIC_PREFIX + topic[:-1]] = method
                else:
                    self.handlers[TOPIC_PREFIX + topic] = method

    def handler(self, topic: str) -> Callable[[Any, int, Cursor], None] | None:
        found = self.handlers.get(topic)
        if found is None and self.prefix_handlers:
            found = self.prefix_handlers.get(topic_prefix(topic))
        return found

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self.handlers)


def to_json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def from_json(value: str | None) -> Any:
    """What `to_json` wrote (parsed in C: the board's entries, tens of thousands a board `as_of`)."""
    return loads_exact(value) if value else None


def iso(value: datetime) -> str:
    """Fixed-width ISO-8601 UTC text, so string order is time order in both databases."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
