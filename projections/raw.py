"""Reading stored events without the domain classes: fast, for projections that see every event.

The library stores event state as JSON in which UUIDs and datetimes are tagged
({"_type_": "uuid_hex", "_data_": ...}); parsing turns those into plain strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Notification

try:  # A C JSON parser, three to four times the standard library's speed (issue 15); optional.
    import orjson
except ImportError:  # pragma: no cover (a dependency; without it the standard parser does the same)
    orjson = None  # type: ignore[assignment]

from projections.summaries import summarise

TOPIC_PREFIX = "stagekeeper:"


def topic_prefix(topic: str) -> str:
    """What an `@on("Aggregate.*")` handler's topic is matched by: the topic up to its last dot."""
    return topic[: topic.rfind(".") + 1]


# The common tags as the library writes them (compact, type before data) are rewritten in the text by
# the regex engine, so most events parse with no Python call per JSON object. Anything else tagged
# (another layout, another type) still goes through `_untag`; the result is the same either way.
# (`split` keeps the work in C: `sub` with a template runs Python per match before Python 3.12.)
_UUID = re.compile(r'\{"_type_":"uuid_hex","_data_":"([0-9a-f]{32})"\}')
_TIME = re.compile(r'\{"_type_":"datetime_iso","_data_":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00)"\}')
_TIME_WHOLE = re.compile(r'\{"_type_":"datetime_iso","_data_":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\+00:00"\}')


def _as_uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def _whole_seconds(text: str) -> str:
    return text + ".000000+00:00"


def _rewrite(pattern: re.Pattern[str], text: str, convert: Callable[[str], str] | None = None) -> str:
    """Each tag `pattern` matches becomes the JSON string of its (converted) data."""
    parts = pattern.split(text)
    if len(parts) == 1:
        return text
    if convert is not None:
        parts[1::2] = [convert(data) for data in parts[1::2]]
    return '"'.join(parts)


_TAG = b'"_type_"'
# orjson reads an integer beyond 64 bits as a float, where the standard parser keeps it exact: a state
# with 19 digits in a row (anywhere, strings too) goes to the standard parser. `translate` turns every
# digit into "0" and everything else into a space, so the test is one substring search.
_DIGITS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_NUMBER = b"0" * 19
_NO_DATA = object()


def parse_state(state: bytes) -> Any:
    """A stored event's state as plain JSON values: tagged UUIDs and datetimes become strings."""
    if orjson is not None and _LONG_NUMBER not in state.translate(_DIGITS):
        try:
            parsed = orjson.loads(state)
        except orjson.JSONDecodeError:  # what only the standard parser takes (NaN, huge numbers, lone surrogates)
            pass
        else:
            tags = state.count(_TAG)
            if not tags:
                return parsed
            if type(parsed) is dict:
                if tags == 1:
                    # Most events' one tag: their time, at the top (what `_untag_top` makes of it, without
                    # a look at every other value).
                    value = parsed.get("timestamp")
                    if type(value) is dict and len(value) == 2 and value.get("_type_") == "datetime_iso":
                        text = value.get("_data_", _NO_DATA)
                        if text is not _NO_DATA:
                            parsed["timestamp"] = fixed_iso(text)
                            return parsed
                if _untag_top(parsed) == tags:
                    return parsed
            # Tags below the top level (or a `"_type_"` key that is no tag): the general path below.
    return _parse_text(state)


def loads_exact(text: str | bytes) -> Any:
    """`json.loads(text)`, in C where that gives the same values: orjson, unless the text has a run of 19
    digits (an integer orjson would read as a float) or orjson refuses it (NaN, lone surrogates, ...)."""
    if orjson is not None:
        try:
            raw = text.encode() if isinstance(text, str) else text
        except UnicodeEncodeError:  # (a lone surrogate in the text itself: only the standard parser takes it)
            return json.loads(text)
        if _LONG_NUMBER not in raw.translate(_DIGITS):
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass
    return json.loads(text)


def _untag_top(data: dict[str, Any]) -> int:
    """The tags among `data`'s own values replaced by their values (as `_untag` makes them); how many."""
    found = 0
    for key, value in data.items():
        if type(value) is dict and len(value) == 2 and "_type_" in value and "_data_" in value:
            untagged = _untag(value)
            if untagged is not value:
                data[key] = untagged
                found += 1
    return found


def _parse_text(state: bytes) -> Any:
    text = state.decode()
    if '"_type_"' not in text:
        return json.loads(text)
    if "uuid_hex" in text:
        text = _rewrite(_UUID, text, _as_uuid)
    text = _rewrite(_TIME, text)
    if '"_type_"' in text:
        text = _rewrite(_TIME_WHOLE, text, _whole_seconds)
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


class RawEvent:
    """A stored event parsed once per batch and shared by every raw projection.

    `position`, `version` and `topic` are the notification's id, originator version and topic, kept on the
    event itself: a batch from a reader process makes its `notification` only when something asks for it
    (projections/pipeline.py `ReceivedEvent`)."""

    __slots__ = ("_stored", "_summary", "after", "aggregate_id", "data", "hash", "position", "topic", "type", "version")

    def __init__(
        self,
        notification: Notification,
        type: str,
        data: dict[str, Any],
        aggregate_id: str,  # the originator id as text
        _summary: str | None = None,
        # The audit chain's link of this event (projections/chain.py), when a reader process computed it
        # from `after`, the hash it took as the previous one: good only where the chain stands at `after`.
        after: str | None = None,
        hash: str | None = None,
    ) -> None:
        self._stored: Notification | None = notification
        self.position: int = notification.id
        self.version: int = notification.originator_version
        self.topic: str = notification.topic
        self.type = type
        self.data = data
        self.aggregate_id = aggregate_id
        self._summary = _summary
        self.after = after
        self.hash = hash

    @property
    def notification(self) -> Notification:
        assert self._stored is not None
        return self._stored

    @classmethod
    def parse(cls, notification: Notification) -> RawEvent:
        return cls(
            notification,
            notification.topic.removeprefix(TOPIC_PREFIX),
            parse_state(notification.state),
            str(notification.originator_id),
        )

    @property
    def summary(self) -> str:
        if self._summary is None:
            self._summary = summarise(self.type, self.data)
        return self._summary

    def _fields(self) -> tuple[Any, ...]:
        return (self.notification, self.type, self.data, self.aggregate_id, self._summary, self.after, self.hash)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RawEvent):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"RawEvent(notification={self.notification!r}, type={self.type!r}, data={self.data!r}, "
            f"aggregate_id={self.aggregate_id!r})"
        )


def fixed_iso(text: str) -> str:
    """ISO-8601 UTC with microseconds always present, so text order is time order."""
    if len(text) == 32 and text.endswith("+00:00"):
        return text
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
