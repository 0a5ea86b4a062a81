"""Reading stored events without the domain classes: fast, for projections that see every event.

The library stores event state as JSON in which UUIDs and datetimes are tagged
({"_type_": "uuid_hex", "_data_": ...}); parsing turns those into plain strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Notification

from projections.summaries import summarise

TOPIC_PREFIX = "stagekeeper:"


# The common tags as the library writes them (compact, type before data) are rewritten in the text by
# the regex engine, so most events parse with no Python call per JSON object. Anything else tagged
# (another layout, another type) still goes through `_untag`; the result is the same either way.
_UUID = re.compile(
    r'\{"_type_":"uuid_hex","_data_":"([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})"\}'
)
_TIME = re.compile(r'\{"_type_":"datetime_iso","_data_":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00)"\}')
_TIME_WHOLE = re.compile(r'\{"_type_":"datetime_iso","_data_":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\+00:00"\}')


def parse_state(state: bytes) -> Any:
    """A stored event's state as plain JSON values: tagged UUIDs and datetimes become strings."""
    text = state.decode()
    if '"_type_"' not in text:
        return json.loads(text)
    if "uuid_hex" in text:
        text = _UUID.sub(r'"\1-\2-\3-\4-\5"', text)
    text = _TIME.sub(r'"\1"', text)
    if '"_type_"' in text:
        text = _TIME_WHOLE.sub(r'"\1.000000+00:00"', text)
        if '"_type_"' in text:
            return json.loads(text, object_hook=_untag)
    return json.loads(text)


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
        return cls(notification, notification.topic.removeprefix(TOPIC_PREFIX), parse_state(notification.state))

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
