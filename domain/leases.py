"""Leases: a stage's lease policy, a deployment's expiry, warnings and idle reaping (rules only, no I/O).

A stage has a policy only when one was set (StageLeasePolicyChanged): without one nothing expires,
so a restricted (production-like) stage never expires unless its policy says so explicitly. A
deployment's lease is its `lease` dict, changed only by the five lease events on the Deployment;
`view()` shows it. Idle reaping counts from the last activity (a lifecycle command, a console
opened, a lease change), which the lease read model keeps (projections/leases.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.errors import InvalidTransitionError, ValidationError
from domain.text import check_text

ON_EXPIRY = ("undeploy", "power-off", "archive")
LEASE_KINDS = ("lease", "idle")
MAX_DURATION = timedelta(days=3650)  # the longest lease, maximum or warning anybody may ask for
MAX_IDLE_DAYS = 3650
MAX_DURATION_TEXT = 32
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"  # fixed width: string order is time order
DEFAULT_WARNING = timedelta(days=1)
_DURATION = re.compile(
    r"P(?:(?P<weeks>\d{1,4})W)?(?:(?P<days>\d{1,5})D)?"
    r"(?:T(?:(?P<hours>\d{1,6})H)?(?:(?P<minutes>\d{1,7})M)?(?:(?P<seconds>\d{1,9})S)?)?"
)


def parse_duration(value: object, field: str) -> timedelta:
    """An ISO-8601 duration in weeks, days, hours, minutes and seconds ("P3D", "PT12H", "P1DT2H")."""
    text = check_text(value, field, max_length=MAX_DURATION_TEXT, required=True)
    match = _DURATION.fullmatch(text.strip().upper())
    if match is None or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValidationError(f'{field} must be an ISO-8601 duration such as "P3D" or "PT12H"', field=field)
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    duration = timedelta(**parts)
    if duration <= timedelta(0):
        raise ValidationError(f"{field} must be longer than zero", field=field)
    if duration > MAX_DURATION:
        raise ValidationError(f"{field} must be at most {MAX_DURATION.days} days", field=field)
    return duration


def format_duration(duration: timedelta) -> str:
    days, rest = duration.days, int(duration.seconds)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    if not (days or time):
        return "PT0S"
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def parse_instant(value: object, field: str) -> datetime:
    """An ISO-8601 date-time with its offset (naive times are ambiguous: refused)."""
    text = check_text(value, field, max_length=40, required=True)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            f'{field} must be an ISO-8601 date-time such as "2026-12-01T18:00:00+01:00"', field=field
        ) from None
    if parsed.tzinfo is None:
        raise ValidationError(f"{field} must carry its UTC offset (e.g. Z or +01:00)", field=field)
    return parsed.astimezone(UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class LeasePolicy:
    """A stage's lease policy. Durations are ISO-8601 text as given (kept as such in events)."""

    default: str | None = None
    maximum: str | None = None
    warning: str | None = None
    on_expiry: str = "undeploy"
    idle_days: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "default": self.default,
            "maximum": self.maximum,
            "warning": self.warning,
            "on_expiry": self.on_expiry,
            "idle_days": self.idle_days,
        }

    @property
    def warning_time(self) -> timedelta:
        return parse_duration(self.warning, "warning") if self.warning else DEFAULT_WARNING

    @property
    def maximum_time(self) -> timedelta | None:
        return parse_duration(self.maximum, "maximum") if self.maximum else None


def parse_policy(value: object, field: str = "lease_policy") -> LeasePolicy | None:
    """A stage's lease policy from a request body (None clears it)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(
            f"{field} must be an object (default, maximum, warning, on_expiry, idle_days)", field=field
        )
    unknown = set(value) - {"default", "maximum", "warning", "on_expiry", "idle_days"}
    if unknown:
        raise ValidationError(
            f"{field}: unknown field(s) {', '.join(sorted(unknown))}", field=f"{field}.{sorted(unknown)[0]}"
        )
    durations: dict[str, str | None] = {}
    for key in ("default", "maximum", "warning"):
        raw = value.get(key)
        if raw is not None:
            parse_duration(raw, f"{field}.{key}")
            durations[key] = str(raw).strip().upper()
        else:
            durations[key] = None
    on_expiry = value.get("on_expiry", "undeploy")
    if on_expiry not in ON_EXPIRY:
        raise ValidationError(f"{field}.on_expiry must be one of {', '.join(ON_EXPIRY)}", field=f"{field}.on_expiry")
    idle = value.get("idle_days")
    if idle is not None and (isinstance(idle, bool) or not isinstance(idle, int) or not 1 <= idle <= MAX_IDLE_DAYS):
        raise ValidationError(
            f"{field}.idle_days must be a whole number of days, 1-{MAX_IDLE_DAYS}", field=f"{field}.idle_days"
        )
    policy = LeasePolicy(on_expiry=on_expiry, idle_days=idle, **durations)
    maximum = policy.maximum_time
    if maximum is not None and durations["default"] and parse_duration(durations["default"], "default") > maximum:
        raise ValidationError(f"{field}.default must not exceed {field}.maximum", field=f"{field}.default")
    return policy


def policy_of(stage: dict[str, Any]) -> LeasePolicy | None:
    """The policy recorded on a stage (None: nothing in this stage expires)."""
    recorded = stage.get("lease_policy")
    return LeasePolicy(**recorded) if recorded else None


def requested_expiry(
    policy: LeasePolicy | None, lease: object, expires_at: object, now: datetime
) -> tuple[datetime | None, str | None]:
    """When a new deployment's lease ends (None: never), from `lease` or `expires_at` or the stage's
    default, checked against the stage's maximum. Returns (expiry, duration text asked)."""
    if lease is not None and expires_at is not None:
        raise ValidationError('give either "lease" or "expires_at", not both', field="lease")
    if lease is not None:
        duration = parse_duration(lease, "lease")
        expiry, asked = now + duration, format_duration(duration)
        field = "lease"
    elif expires_at is not None:
        expiry, asked, field = parse_instant(expires_at, "expires_at"), None, "expires_at"
    elif policy is not None and policy.default:
        return now + parse_duration(policy.default, "default"), policy.default
    else:
        return None, None
    check_within(policy, expiry, now, field)
    return expiry, asked


def check_within(policy: LeasePolicy | None, expiry: datetime, now: datetime, field: str) -> None:
    if expiry <= now:
        raise ValidationError(f"{field} must be in the future", field=field)
    maximum = policy.maximum_time if policy is not None else None
    limit = maximum if maximum is not None else MAX_DURATION
    if expiry - now > limit:
        raise ValidationError(
            f"{field}: the lease may run at most {format_duration(limit)} from now (the stage's maximum)", field=field
        )


def new_expiry(
    lease: dict[str, Any] | None, policy: LeasePolicy | None, change: dict[str, Any], now: datetime
) -> datetime:
    """The expiry asked by PATCH .../lease ({"extend_by"} or {"expires_at"}), within the stage's maximum."""
    if "extend_by" in change and "expires_at" in change:
        raise ValidationError('give either "extend_by" or "expires_at", not both', field="extend_by")
    if "extend_by" in change:
        base = instant(lease["expires_at"]) if lease and lease.get("expires_at") else now
        expiry, field = max(base, now) + parse_duration(change["extend_by"], "extend_by"), "extend_by"
    else:
        expiry, field = parse_instant(change["expires_at"], "expires_at"), "expires_at"
    check_within(policy, expiry, now, field)
    return expiry


# -- what is due --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Due:
    """What the scheduler should record for one deployment now: a warning or an expiry."""

    action: str  # "warn" | "expire"
    kind: str  # "lease" | "idle"
    at: datetime  # when the lease ends / the idle deployment is reaped


def idle_deadline(policy: LeasePolicy | None, last_activity: datetime | None) -> datetime | None:
    if policy is None or policy.idle_days is None or last_activity is None:
        return None
    return last_activity + timedelta(days=policy.idle_days)


def due(
    lease: dict[str, Any] | None,
    state: str,
    policy: LeasePolicy | None,
    last_activity: datetime | None,
    now: datetime,
) -> Due | None:
    """The next lease step for a deployment (lease expiry comes before idle reaping)."""
    lease = lease or {}
    expires_at = lease.get("expires_at")
    if expires_at and lease.get("expired_for") != expires_at and state in ("deployed", "failed"):
        ends = instant(expires_at)
        if ends <= now:
            return Due("expire", "lease", ends)
        warning = policy.warning_time if policy is not None else DEFAULT_WARNING
        if ends - warning <= now and lease.get("warned_for") != expires_at:
            return Due("warn", "lease", ends)
    reap = idle_deadline(policy, last_activity)
    if reap is None or lease.get("keep") or state != "deployed" or lease.get("reaped_for") == stamp(reap):
        return None
    if reap <= now:
        return Due("expire", "idle", reap)
    assert policy is not None
    if reap - policy.warning_time <= now and lease.get("idle_warned_for") != stamp(reap):
        return Due("warn", "idle", reap)
    return None


def upcoming(
    lease: dict[str, Any] | None,
    state: str,
    policy: LeasePolicy | None,
    last_activity: datetime | None,
    until: datetime,
) -> list[tuple[str, datetime]]:
    """What will expire or be reaped before `until` (the dry-run report): [(kind, when)]."""
    found: list[tuple[str, datetime]] = []
    if state in ("undeploying", "undeployed"):
        return found
    lease = lease or {}
    expires_at = lease.get("expires_at")
    if expires_at and lease.get("expired_for") != expires_at and instant(expires_at) <= until:
        found.append(("lease", instant(expires_at)))
    reap = idle_deadline(policy, last_activity)
    idle = reap is not None and reap <= until and state == "deployed" and not lease.get("keep")
    if idle and reap is not None and lease.get("reaped_for") != stamp(reap):
        found.append(("idle", reap))
    return found


# -- the Deployment's lease section (applied by its events) ------------------------------------
def lease_view(lease: dict[str, Any] | None) -> dict[str, Any]:
    """The lease as the deployment's view shows it (read models and the scheduler read these fields)."""
    lease = lease or {}
    return {
        "expires_at": lease.get("expires_at"),
        "keep": bool(lease.get("keep")),
        "warned_for": lease.get("warned_for"),
        "idle_warned_for": lease.get("idle_warned_for"),
        "expired_for": lease.get("expired_for"),
        "reaped_for": lease.get("reaped_for"),
        "expired": lease.get("expired"),
    }


def check_changeable(lease: dict[str, Any] | None, state: str) -> None:
    """A lease changes while the deployment lives: not once it is being (or has been) undeployed."""
    if state in ("undeploying", "undeployed"):
        raise InvalidTransitionError(f"cannot change the lease of a deployment that is {state}")


def applied_set(lease: dict[str, Any] | None, expires_at: str | None) -> dict[str, Any]:
    return {**(lease or {}), "expires_at": expires_at}


def applied_keep(lease: dict[str, Any] | None, keep: bool) -> dict[str, Any]:
    return {**(lease or {}), "keep": keep}


def applied_expiring(lease: dict[str, Any] | None, kind: str, at: str) -> dict[str, Any]:
    return {**(lease or {}), ("warned_for" if kind == "lease" else "idle_warned_for"): at}


def applied_expired(lease: dict[str, Any] | None, kind: str, policy: str, at: str) -> dict[str, Any]:
    done = "expired_for" if kind == "lease" else "reaped_for"
    return {**(lease or {}), done: at, "expired": {"kind": kind, "policy": policy, "at": at}}
