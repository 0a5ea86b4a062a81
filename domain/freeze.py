"""Freeze windows: periods during which lifecycle commands into a stage are refused.

A window covers the whole installation, one service, or one stage of a service. It has a start
and an end and, optionally, repeats weekly. A weekly window repeats in wall-clock time of its IANA
time zone (every Friday 16:00 to Monday 06:00 Europe/Paris stays 16:00 to 06:00 Paris time on
both sides of a daylight-saving change), so occurrences are computed from local times and only
then turned into instants. Every window of the installation lives in one aggregate (the freeze
calendar): the gate reads one object per command, and windows change rarely.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate, event

from domain.errors import NotFoundError, ValidationError
from domain.text import check_text
from domain.values import MAX_NAME, normalise_key

FREEZE_CALENDAR_ID = uuid5(NAMESPACE_URL, "https://stagekeeper.invalid/freeze-calendar")
MAX_WINDOWS = 500
MAX_WINDOW_DAYS = 366  # one occurrence; a longer freeze is a sign of a typo
MAX_GROUP = 1024  # a directory group DN
WEEK = timedelta(days=7)
RECURRENCES = ("weekly",)


@dataclass(frozen=True)
class Occurrence:
    start: datetime
    end: datetime


def zone(name: object, field: str = "timezone") -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ValidationError(f"{field} must name an IANA time zone, e.g. Europe/Paris", field=field)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{field}: '{name}' is not an IANA time zone", field=field) from None


def local_time(value: object, tz: ZoneInfo, field: str) -> datetime:
    """An ISO 8601 time as naive wall-clock time in `tz` (a time without offset is read in `tz`)."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValidationError(f"{field} must be an ISO 8601 time, e.g. 2026-12-04T16:00", field=field)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{field} must be an ISO 8601 time, e.g. 2026-12-04T16:00", field=field) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(tz).replace(tzinfo=None)
    return parsed


def instant(local: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time in `tz` as an aware UTC instant. A time that does not exist (spring
    forward) is read with the offset before the change; a repeated one (fall back), the first."""
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def occurrence_at(window: dict[str, Any], now: datetime) -> Occurrence | None:
    """The occurrence of `window` that contains `now` (aware), if any."""
    tz = ZoneInfo(window["timezone"])
    start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
    if window.get("recurrence") != "weekly":
        first = Occurrence(instant(start, tz), instant(end, tz))
        return first if first.start <= now < first.end else None
    if now < instant(start, tz):
        return None
    local_now = now.astimezone(tz).replace(tzinfo=None)
    weeks = (local_now - start) // WEEK
    # The occurrence that started last (its local start is at most a week before now), and the one
    # before it when a window is longer than the offset change could make it look.
    for k in (weeks, weeks - 1):
        if k < 0:
            continue
        candidate = Occurrence(instant(start + k * WEEK, tz), instant(end + k * WEEK, tz))
        until = window.get("until")
        if until is not None and candidate.start >= instant(datetime.fromisoformat(until), tz):
            continue
        if candidate.start <= now < candidate.end:
            return candidate
    return None


def applies(window: dict[str, Any], service_id: UUID, stage: str) -> bool:
    if window["service_id"] is None:
        return True
    if window["service_id"] != str(service_id):
        return False
    return window["stage"] is None or normalise_key(window["stage"]) == normalise_key(stage)


def parse_window(data: object) -> dict[str, Any]:
    """A window as given by a user, checked: name, scope, start/end (local to `timezone`), recurrence."""
    if not isinstance(data, dict):
        raise ValidationError("a freeze window must be an object", field="body")
    unknown = set(data) - {"name", "service_id", "stage", "start", "end", "timezone", "recurrence", "until",
                           "override_group"}  # fmt: skip
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    name = check_text(data.get("name"), "name", max_length=MAX_NAME, required=True)
    tz = zone(data.get("timezone", "UTC"))
    start = local_time(data.get("start"), tz, "start")
    end = local_time(data.get("end"), tz, "end")
    if end <= start:
        raise ValidationError("end must be after start", field="end")
    if end - start > timedelta(days=MAX_WINDOW_DAYS):
        raise ValidationError(f"a window lasts at most {MAX_WINDOW_DAYS} days", field="end")
    recurrence = data.get("recurrence")
    if recurrence is not None and recurrence not in RECURRENCES:
        raise ValidationError("recurrence must be weekly (or absent)", field="recurrence")
    if recurrence == "weekly" and end - start >= WEEK:
        raise ValidationError("a weekly window lasts less than a week", field="end")
    until = data.get("until")
    if until is not None:
        if recurrence is None:
            raise ValidationError("until needs a recurrence", field="until")
        until = local_time(until, tz, "until").isoformat()
    service_id = data.get("service_id")
    if service_id is not None:
        try:
            service_id = str(UUID(str(service_id)))
        except ValueError:
            raise ValidationError("service_id must be a service id", field="service_id") from None
    stage = data.get("stage")
    if stage is not None:
        if service_id is None:
            raise ValidationError("a stage window needs service_id", field="stage")
        stage = check_text(stage, "stage", max_length=4 * MAX_NAME, required=True)
    group = data.get("override_group")
    if group is not None:
        group = check_text(group, "override_group", max_length=MAX_GROUP, required=True)
    return {
        "name": name,
        "service_id": service_id,
        "stage": stage,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timezone": tz.key,
        "recurrence": recurrence,
        "until": until,
        "override_group": group,
    }


def describe(window: dict[str, Any], occurrence: Occurrence) -> str:
    tz = ZoneInfo(window["timezone"])
    ends = occurrence.end.astimezone(tz).isoformat(timespec="minutes")
    return f"freeze window '{window['name']}' ({window['id']}) until {ends} {window['timezone']}"


class FreezeCalendar(Aggregate):
    """Every freeze window, and every override of one (with its reason)."""

    TOPIC = "stagekeeper:FreezeCalendar"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:FreezeCalendar.Created"

    @event("Opened", topic="stagekeeper:FreezeCalendar.Opened")
    def __init__(self) -> None:
        self.windows: dict[str, dict[str, Any]] = {}

    @staticmethod
    def create_id() -> UUID:
        return FREEZE_CALENDAR_ID

    def window(self, window_id: str) -> dict[str, Any]:
        found = self.windows.get(window_id)
        if found is None:
            raise NotFoundError(f"no freeze window with id {window_id}", field="window_id")
        return found

    def active(self, service_id: UUID, stage: str, now: datetime) -> list[tuple[dict[str, Any], Occurrence]]:
        found = []
        for window in self.windows.values():
            if applies(window, service_id, stage):
                occurrence = occurrence_at(window, now)
                if occurrence is not None:
                    found.append((window, occurrence))
        return sorted(found, key=lambda pair: pair[1].end, reverse=True)

    def add(self, window: dict[str, Any], actor: str, reason: str | None) -> dict[str, Any]:
        if len(self.windows) >= MAX_WINDOWS:
            raise ValidationError(f"at most {MAX_WINDOWS} freeze windows; delete old ones first", field="body")
        window_id = str(uuid4())
        self._window_added(window={**window, "id": window_id, "created_by": actor}, actor=actor, reason=reason)
        return self.windows[window_id]

    @event("WindowAdded", topic="stagekeeper:FreezeCalendar.WindowAdded")
    def _window_added(self, window: dict[str, Any], actor: str, reason: str | None) -> None:
        self.windows[window["id"]] = dict(window)

    def replace(self, window_id: str, window: dict[str, Any], actor: str, reason: str | None) -> dict[str, Any]:
        before = self.window(window_id)
        after = {**window, "id": window_id, "created_by": before["created_by"]}
        if before.get("by_administrator"):
            after["by_administrator"] = True
        if after != before:
            self._window_changed(window_id=window_id, before=before, window=after, actor=actor, reason=reason)
        return self.windows[window_id]

    @event("WindowChanged", topic="stagekeeper:FreezeCalendar.WindowChanged")
    def _window_changed(
        self, window_id: str, before: dict[str, Any], window: dict[str, Any], actor: str, reason: str | None
    ) -> None:
        self.windows[window_id] = dict(window)

    def remove(self, window_id: str, actor: str, reason: str | None) -> dict[str, Any]:
        window = self.window(window_id)
        self._window_removed(window_id=window_id, window=window, actor=actor, reason=reason)
        return window

    @event("WindowRemoved", topic="stagekeeper:FreezeCalendar.WindowRemoved")
    def _window_removed(self, window_id: str, window: dict[str, Any], actor: str, reason: str | None) -> None:
        self.windows.pop(window_id, None)

    def record_override(
        self, window_id: str, command: str, target_id: UUID, stage: str, actor: str, reason: str | None
    ) -> None:
        """Written in the same commit as the command that went through the window."""
        self._overridden(window_id=window_id, command=command, target_id=target_id, stage=stage, actor=actor,
                         reason=reason)  # fmt: skip

    @event("Overridden", topic="stagekeeper:FreezeCalendar.Overridden")
    def _overridden(
        self, window_id: str, command: str, target_id: UUID, stage: str, actor: str, reason: str | None
    ) -> None:
        pass
