"""Reading stored events without the domain classes: fast, for projections that see every event.

The library stores event state as JSON in which UUIDs and datetimes are tagged
({"_type_": "uuid_hex", "_data_": ...}); parsing turns those into plain strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Notification

from projections.summaries import summarise

TOPIC_PREFIX = "stagekeeper:"


def _untag(obj: dict[str, Any]) -> Any:
    # Most objects are not tags: the length test turns them away before any lookup.
    if len(obj) != 2:
        return obj
    kind = obj.get("_type_")
    if kind is None or "_data_" not in obj:
        return obj
    data = obj["_data_"]
    if kind == "uuid_hex":
        return f"{data[:8]}-{data[8:12]}-{data[12:16]}-{data[16:20]}-{data[20:]}"
    if kind == "datetime_iso":
        return fixed_iso(data)
    return data


@dataclass
class RawEvent:
    """A stored event parsed once per batch and shared by every raw projection."""

    notification: Notification
    type: str
    data: dict[str, Any]
    _summary: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, notification: Notification) -> RawEvent:
        # object_hook runs in the C parser for each JSON object: cheaper than walking afterwards.
        data = json.loads(notification.state, object_hook=_untag)
        return cls(notification, notification.topic.removeprefix(TOPIC_PREFIX), data)

    @property
    def summary(self) -> str:
        if self._summary is None:
            self._summary = summarise(self.type, self.data)
        return self._summary


def fixed_iso(text: str) -> str:
    """ISO-8601 UTC with microseconds always present, so text order is time order."""
    if len(text) == 32 and text.endswith("+00:00"):
        return text
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
