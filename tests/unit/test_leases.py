"""Lease rules without I/O: durations, policies, lease arithmetic, warnings, idle reaping, signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain import leases
from domain.errors import ValidationError
from domain.notifications import kind_of, signature, verify

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("P3D", timedelta(days=3)), ("PT12H", timedelta(hours=12)), ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
     ("P2W", timedelta(weeks=2)), ("pt90s", timedelta(seconds=90))],
)  # fmt: skip
def test_iso_durations_are_read(text: str, expected: timedelta) -> None:
    assert leases.parse_duration(text, "lease") == expected


@pytest.mark.parametrize("text", ["3D", "P", "PT", "P1DT", "P0D", "P1Y", "P9999D", "", "P1D\n", 3])
def test_bad_durations_name_the_field(text: object) -> None:
    with pytest.raises(ValidationError) as refused:
        leases.parse_duration(text, "extend_by")
    assert refused.value.field == "extend_by"


def test_durations_are_written_back_in_iso() -> None:
    assert leases.format_duration(timedelta(days=1, hours=2)) == "P1DT2H"
    assert leases.format_duration(timedelta(minutes=5)) == "PT5M"


def test_a_policy_is_parsed_and_checked() -> None:
    policy = leases.parse_policy({"default": "p7d", "maximum": "P30D", "on_expiry": "power-off", "idle_days": 5})
    assert policy is not None
    assert policy.to_dict() == {
        "default": "P7D", "maximum": "P30D", "warning": None, "on_expiry": "power-off", "idle_days": 5,
    }  # fmt: skip
    assert policy.warning_time == timedelta(days=1)
    assert leases.parse_policy(None) is None
    with pytest.raises(ValidationError) as unknown:
        leases.parse_policy({"forever": True})
    assert unknown.value.field == "lease_policy.forever"
    with pytest.raises(ValidationError):
        leases.parse_policy({"idle_days": True})


def test_a_new_lease_comes_from_the_request_or_the_stage_default_within_the_maximum() -> None:
    policy = leases.LeasePolicy(default="P2D", maximum="P5D")
    assert leases.requested_expiry(policy, None, None, NOW) == (NOW + timedelta(days=2), "P2D")
    assert leases.requested_expiry(policy, "P1D", None, NOW) == (NOW + timedelta(days=1), "P1D")
    at = (NOW + timedelta(days=4)).isoformat()
    assert leases.requested_expiry(policy, None, at, NOW)[0] == NOW + timedelta(days=4)
    assert leases.requested_expiry(None, None, None, NOW) == (None, None)  # no policy: no lease
    for lease, expires_at, field in (
        ("P6D", None, "lease"), (None, (NOW - timedelta(hours=1)).isoformat(), "expires_at"),
        (None, "2026-03-02T10:00:00", "expires_at"), ("P1D", at, "lease"),
    ):  # fmt: skip
        with pytest.raises(ValidationError) as refused:
            leases.requested_expiry(policy, lease, expires_at, NOW)
        assert refused.value.field == field


def test_an_extension_adds_to_the_current_end_not_to_now() -> None:
    lease = {"expires_at": leases.stamp(NOW + timedelta(days=1))}
    assert leases.new_expiry(lease, None, {"extend_by": "P2D"}, NOW) == NOW + timedelta(days=3)
    expired = {"expires_at": leases.stamp(NOW - timedelta(days=1))}
    assert leases.new_expiry(expired, None, {"extend_by": "P2D"}, NOW) == NOW + timedelta(days=2)


def test_a_lease_warns_once_then_expires_once() -> None:
    policy = leases.LeasePolicy(warning="PT6H")
    ends = NOW + timedelta(hours=5)
    lease = {"expires_at": leases.stamp(ends)}
    assert leases.due(lease, "deployed", policy, None, NOW - timedelta(hours=2)) is None
    assert leases.due(lease, "deployed", policy, None, NOW) == leases.Due("warn", "lease", ends)
    warned = leases.applied_expiring(lease, "lease", lease["expires_at"])
    assert leases.due(warned, "deployed", policy, None, NOW) is None
    assert leases.due(warned, "deployed", policy, None, ends) == leases.Due("expire", "lease", ends)
    done = leases.applied_expired(warned, "lease", "undeploy", lease["expires_at"])
    assert leases.due(done, "deployed", policy, None, ends + timedelta(days=9)) is None
    assert leases.due(lease, "promoting", policy, None, ends) is None  # waits for the move to end


def test_idle_reaping_counts_from_the_last_activity_and_keep_exempts() -> None:
    policy = leases.LeasePolicy(idle_days=3)
    last = NOW - timedelta(days=3)
    assert leases.due({}, "deployed", policy, last, NOW) == leases.Due("expire", "idle", NOW)
    assert leases.due({"keep": True}, "deployed", policy, last, NOW) is None
    assert leases.due({}, "deployed", policy, NOW - timedelta(days=2, hours=1), NOW) == leases.Due(
        "warn", "idle", NOW + timedelta(hours=23)
    )
    assert leases.due({}, "deployed", leases.LeasePolicy(), last, NOW) is None  # no idle_days: never
    assert leases.due({}, "failed", policy, last, NOW) is None
    assert leases.upcoming({}, "deployed", policy, last, NOW + timedelta(days=1)) == [("idle", NOW)]


def test_notification_kinds_and_signatures() -> None:
    assert kind_of("stagekeeper:Deployment.LeaseExpiring") == "lease-expiring"
    assert kind_of("stagekeeper:Approval.Requested") == "approval-requested"
    assert kind_of("stagekeeper:Deployment.PowerFailed") == "deployment-failed"
    assert kind_of("stagekeeper:Deployment.Deployed") is None
    signed = signature("k" * 20, b'{"a":1}')
    assert signed.startswith("sha256=")
    assert verify("k" * 20, b'{"a":1}', signed)
    assert not verify("k" * 20, b'{"a":2}', signed)


def test_the_global_webhook_setting_needs_a_valid_url_and_a_secret() -> None:
    from adapters.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="STAGEKEEPER_WEBHOOK_URL: url must be an http"):
        Settings.from_env({"STAGEKEEPER_WEBHOOK_URL": "ftp://x.test/"})
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        Settings.from_env({"STAGEKEEPER_WEBHOOK_URL": "https://x.test/hook"})
    ok = Settings.from_env({"STAGEKEEPER_WEBHOOK_URL": "https://x.test/hook", "STAGEKEEPER_WEBHOOK_SECRET": "s" * 20})
    assert ok.webhook_url == "https://x.test/hook"
