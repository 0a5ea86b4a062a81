"""Freeze-window recurrence (across daylight-saving changes), soak arithmetic, and the gate's order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from domain.approval import APPROVED, AWAITING, Approval
from domain.errors import ConflictError, PermissionDeniedError, ValidationError
from domain.freeze import occurrence_at, parse_window
from domain.governance import arrival, scheduled_time, soak_ends
from domain.permissions import Caller

PARIS_WEEKEND = {
    "name": "weekend",
    "start": "2026-03-20T16:00",  # a Friday, before the spring change (29 March)
    "end": "2026-03-23T06:00",  # the Monday after
    "timezone": "Europe/Paris",
    "recurrence": "weekly",
}


def window(**changes: Any) -> dict[str, Any]:
    return {**parse_window({**PARIS_WEEKEND, **changes}), "id": "w1"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_weekly_paris_window_keeps_its_wall_clock_hours_across_the_spring_change() -> None:
    weekly = window()
    # Before the change Paris is UTC+1: Friday 16:00 is 15:00 UTC.
    assert occurrence_at(weekly, utc("2026-03-20T14:59")) is None
    first = occurrence_at(weekly, utc("2026-03-20T15:00"))
    assert first is not None
    assert first.end == utc("2026-03-23T05:00")
    # The weekend of the change: it starts at 15:00 UTC (UTC+1) and ends Monday at 04:00 UTC (UTC+2).
    during = occurrence_at(weekly, utc("2026-03-29T12:00"))
    assert during is not None
    assert (during.start, during.end) == (utc("2026-03-27T15:00"), utc("2026-03-30T04:00"))
    # After it, Friday 16:00 Paris is 14:00 UTC.
    assert occurrence_at(weekly, utc("2026-04-03T13:59")) is None
    assert occurrence_at(weekly, utc("2026-04-03T14:00")) is not None
    assert occurrence_at(weekly, utc("2026-04-06T04:00")) is None
    # Midweek is open.
    assert occurrence_at(weekly, utc("2026-04-01T12:00")) is None


def test_a_weekly_window_follows_the_autumn_change_and_stops_at_until() -> None:
    weekly = window(until="2026-11-01T00:00")
    # 25 October 2026: Paris goes back to UTC+1 during the weekend: Monday 06:00 is 05:00 UTC.
    octo = occurrence_at(weekly, utc("2026-10-24T12:00"))
    assert octo is not None
    assert (octo.start, octo.end) == (utc("2026-10-23T14:00"), utc("2026-10-26T05:00"))
    assert occurrence_at(weekly, utc("2026-10-30T16:00")) is not None  # starts before until
    assert occurrence_at(weekly, utc("2026-11-06T16:00")) is None  # after until


def test_a_one_off_window_and_an_offset_given_start() -> None:
    once = window(recurrence=None, start="2026-12-24T18:00:00+01:00", end="2026-12-26T08:00")
    assert once["start"] == "2026-12-24T18:00:00"
    assert occurrence_at(once, utc("2026-12-24T17:00")) is not None
    assert occurrence_at(once, utc("2026-12-26T07:00")) is None
    assert occurrence_at(once, utc("2027-01-01T12:00")) is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"end": "2026-03-20T15:00"}, "end"),
        ({"end": "2026-03-28T16:00"}, "end"),  # a weekly window shorter than a week
        ({"recurrence": "daily"}, "recurrence"),
        ({"start": "next friday"}, "start"),
        ({"stage": "prod"}, "stage"),  # a stage window needs its service
        ({"name": "a\u202eb"}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_windows_are_checked_field_by_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_window({**PARIS_WEEKEND, **changes})
    assert refused.value.field == field


def test_soak_starts_when_the_deployment_arrives_in_its_stage() -> None:
    t0 = utc("2026-05-01T10:00")
    history = [("Requested", t0), ("ProvisioningStarted", t0), ("Deployed", t0 + timedelta(minutes=5))]
    assert arrival(history) == t0 + timedelta(minutes=5)
    moved = [*history, ("MoveRequested", t0 + timedelta(hours=1)), ("Moved", t0 + timedelta(hours=2))]
    assert arrival(moved) == t0 + timedelta(hours=2)
    # A later upgrade or snapshot does not reset the clock; a new deployment does not touch this one's.
    assert arrival([*moved, ("Upgraded", t0 + timedelta(hours=3))]) == t0 + timedelta(hours=2)
    assert soak_ends(arrival(moved), 3600) == t0 + timedelta(hours=3)
    assert soak_ends(arrival([("Requested", t0)]), 3600) is None  # not running there yet


def test_a_scheduled_time_must_carry_its_offset_and_lie_ahead() -> None:
    now = utc("2026-11-26T12:00")
    assert scheduled_time("2026-12-01T22:00:00+01:00", "promote", now) == utc("2026-12-01T21:00")
    assert scheduled_time(None, "promote", now) is None
    for at, kind in (("2026-12-01T22:00", "promote"), ("2026-11-26T11:00:00+00:00", "promote"),
                     ("2026-12-01T22:00:00+01:00", "copy"), ("soon", "promote")):  # fmt: skip
        with pytest.raises(ValidationError) as refused:
            scheduled_time(at, kind, now)
        assert refused.value.field == "at"


def request(needed: int = 2, may: bool = False) -> Approval:
    return Approval(
        kind="promote", service_id=uuid4(), stage="prod", target_id=uuid4(), command={}, seen={}, needed=needed,
        group="cn=cab,dc=example", requester_may_approve=may, expires_at=None, run_at=None, override_freeze=False,
        requester_groups=[], actor="alice", reason="release",
    )  # fmt: skip


CAB = frozenset({"CN=CAB,dc=example"})


def test_two_distinct_approvers_from_the_group_approve_a_request() -> None:
    approval = request()
    with pytest.raises(PermissionDeniedError, match="may not approve"):
        approval.approve(Caller("alice", CAB), None)  # the requester
    with pytest.raises(PermissionDeniedError, match="must belong to group"):
        approval.approve(Caller("mallory", frozenset({"cn=devs"})), None)
    approval.approve(Caller("bob", CAB), "looks fine")
    with pytest.raises(ConflictError, match="already"):
        approval.approve(Caller("BOB", CAB), None)
    assert approval.state == AWAITING
    approval.approve(Caller("carol", CAB), None)
    assert approval.state == APPROVED
    with pytest.raises(ConflictError):
        approval.reject(Caller("dave", CAB), None)
    approval.record_executed("alice")
    with pytest.raises(ConflictError):
        approval.record_executed("alice")


def test_a_requester_may_approve_when_the_stage_allows_it() -> None:
    approval = request(needed=1, may=True)
    approval.approve(Caller("alice", CAB), None)
    assert approval.state == APPROVED
