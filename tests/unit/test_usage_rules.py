"""Pure rules of resource usage: buckets and downsampling, resolutions, quota arithmetic, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from api.usage import MAX_POINTS, _used, window
from domain.errors import ValidationError
from domain.quotas import excess, parse_quota
from domain.usage import Figures, machine_figures, total
from projections.base import iso
from projections.metrics import COARSE, FINE, Retention, average, bucket_of

T = datetime(2026, 5, 4, 13, 47, 31, tzinfo=UTC)


def test_a_time_falls_in_its_five_minute_and_hourly_bucket() -> None:
    assert bucket_of(T, FINE) == datetime(2026, 5, 4, 13, 45, tzinfo=UTC)
    assert bucket_of(T, COARSE) == datetime(2026, 5, 4, 13, 0, tzinfo=UTC)
    assert bucket_of(datetime(2026, 5, 4, 13, 45, tzinfo=UTC), FINE) == datetime(2026, 5, 4, 13, 45, tzinfo=UTC)


def test_a_bucket_average_is_its_sum_over_the_samples_taken() -> None:
    assert average({"cpu_mhz": 3000, "samples": 4}, "cpu_mhz") == 750
    assert average({"cpu_mhz": 0, "samples": 0}, "cpu_mhz") == 0


def test_fine_points_are_read_while_kept_and_for_steps_under_an_hour() -> None:
    retention = Retention(fine_days=7, coarse_days=365)
    assert retention.resolution_for(T - timedelta(days=2), 600, T) == FINE
    assert retention.resolution_for(T - timedelta(days=8), 600, T) == COARSE  # 5-minute points are gone
    assert retention.resolution_for(T - timedelta(days=2), 3600, T) == COARSE


def test_downsampling_averages_the_buckets_inside_each_step() -> None:
    def row(minute: int, cpu: int, samples: int) -> dict[str, Any]:
        at = iso(datetime(2026, 5, 4, 13, minute, tzinfo=UTC))  # as the metrics read model stores it
        return {"bucket": at, "samples": samples, "cpu_mhz": cpu, "memory_mib": 0, "committed_bytes": 0, "vms": samples}

    rows = [row(0, 1000, 2), row(5, 300, 1), row(20, 800, 4)]
    points = [datetime(2026, 5, 4, 13, m, tzinfo=UTC) for m in (0, 10, 20)]
    used = _used(rows, points, 600)
    first, second, third = used
    assert first is not None
    assert first["cpu_mhz"] == (500 + 300) / 2  # two 5-minute buckets, each its own average
    assert second is None  # nothing sampled from 13:10 to 13:20
    assert third is not None
    assert third["cpu_mhz"] == 200


def test_machine_figures_sum_cpus_memory_and_declared_disks() -> None:
    spec = {"cpus": 4, "memory_mib": 8192, "disks": [{"size_gib": 40}, {"size_gib": 10}]}
    assert machine_figures(spec) == Figures(4, 8192, 50, 1)
    assert total([spec, {"cpus": 1, "memory_mib": 512}]) == Figures(5, 8704, 50, 2)


def test_a_quota_is_passed_only_beyond_its_limit() -> None:
    quota = {"vcpus": 10, "disk_gib": 100}
    held = Figures(6, 9999, 60, 3)
    assert excess(quota, Figures(4, 1, 40, 1), held) == []  # exactly at the limit
    assert excess(quota, Figures(5, 1, 41, 1), held) == [
        "vCPUs: requested 5, in use 6, limit 10",
        "provisioned disk (GiB): requested 41, in use 60, limit 100",
    ]
    assert excess({"memory_mib": 0}, Figures(0, 4, 0, 1), Figures()) == ["memory (MiB): requested 4, in use 0, limit 0"]


def test_quota_input_is_checked_field_by_field() -> None:
    assert parse_quota({"vcpus": 8, "memory_mib": None}) == {"vcpus": 8}
    assert parse_quota({"vcpus": None}) is None
    assert parse_quota(None) is None
    for value, field in (
        ([], "quota"),
        ({"vcpu": 1}, "quota.vcpu"),
        ({"disk_gib": -1}, "quota.disk_gib"),
        ({"disk_gib": 1.5}, "quota.disk_gib"),
        ({"memory_mib": False}, "quota.memory_mib"),
    ):
        with pytest.raises(ValidationError) as refused:
            parse_quota(value)
        assert refused.value.field == field


def fake_runtime() -> Any:
    return SimpleNamespace(clock=SimpleNamespace(now=lambda: T))


def test_a_usage_window_defaults_to_a_day_and_is_bounded() -> None:
    span = window(fake_runtime(), None, None, None)
    assert span.end == T
    assert span.step == 300
    assert span.start == datetime(2026, 5, 3, 13, 45, tzinfo=UTC)  # a day back, on a step boundary
    assert len(span.points()) <= MAX_POINTS
    thirty_days = window(fake_runtime(), (T - timedelta(days=30)).isoformat(), None, None)
    assert len(thirty_days.points()) <= 300
    for start, step, field in (
        (T.isoformat(), None, "from"),  # from == to
        ((T - timedelta(days=401)).isoformat(), None, "from"),
        ((T - timedelta(days=30)).isoformat(), 60, "step"),  # 43,201 points
        (None, 10, "step"),
        ("0001-01-01T00:00:00Z", None, "from"),
    ):
        with pytest.raises(ValidationError) as refused:
            window(fake_runtime(), start, None, step)
        assert refused.value.field == field


def test_allocated_series_counts_an_interval_from_its_start_until_its_end() -> None:
    from projections.usage import series

    def at(hour: int) -> datetime:
        return datetime(2026, 5, 4, hour, tzinfo=UTC)

    def row(start: int, end: int | None, vcpus: int) -> dict[str, Any]:
        return {
            "from_at": iso(at(start)), "to_at": iso(at(end)) if end is not None else None,
            "vcpus": vcpus, "memory_mib": 0, "disk_gib": 0, "machines": 1,
        }  # fmt: skip

    rows = [row(2, 5, 4), row(4, None, 2), row(6, 7, 8)]
    held = series(rows, [at(h) for h in range(1, 9)])
    assert [h["vcpus"] for h in held] == [0, 4, 4, 6, 2, 10, 2, 2]
    assert [h["machines"] for h in held] == [0, 1, 1, 2, 1, 2, 1, 1]


def test_a_usage_window_outside_the_era_of_usage_is_refused_not_overflowed() -> None:
    with pytest.raises(ValidationError) as refused:
        window(fake_runtime(), None, "9999-12-31T23:59:59Z", None)
    assert refused.value.field == "to"


def _used_reference(rows: list[dict[str, Any]], points: list[datetime], step: int) -> list[dict[str, Any] | None]:
    """The rule of `_used` written plainly: per bucket, the sum over its rows of sum / samples; per
    point, the mean of the buckets in [point, point + step), summed in bucket order."""
    per_bucket: dict[str, list[float]] = {}
    for row in rows:
        samples = int(row["samples"]) or 1
        totals = per_bucket.setdefault(row["bucket"], [0.0, 0.0, 0.0, 0.0])
        for i, column in enumerate(("cpu_mhz", "memory_mib", "committed_bytes", "vms")):
            totals[i] += int(row[column]) / samples
    result: list[dict[str, Any] | None] = []
    for point in points:
        start, end = iso(point), iso(point + timedelta(seconds=step))
        inside = [per_bucket[b] for b in sorted(per_bucket) if start <= b < end]
        if not inside:
            result.append(None)
            continue
        sums = [0.0, 0.0, 0.0, 0.0]
        for totals in inside:
            sums = [s + t for s, t in zip(sums, totals, strict=True)]
        n = len(inside)
        result.append(
            {
                "cpu_mhz": round(sums[0] / n, 1),
                "memory_mib": round(sums[1] / n, 1),
                "committed_gib": round(sums[2] / n / 1024**3, 3),
                "vms": round(sums[3] / n, 2),
            }
        )
    return result


@pytest.mark.parametrize("seed", range(40))
def test_used_matches_its_plain_rule_on_random_buckets(seed: int) -> None:
    import random

    rng = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    step = rng.choice([300, 600, 3600, 9000])
    points = [base + timedelta(seconds=i * step) for i in range(rng.randint(0, 40))]
    rows = [
        {
            "bucket": iso(base + timedelta(seconds=300 * rng.randint(-10, len(points) * step // 300 + 10))),
            "samples": rng.randint(0, 6),
            "cpu_mhz": rng.randint(0, 10**6),
            "memory_mib": rng.randint(0, 10**6),
            "committed_bytes": rng.randint(0, 10**13),
            "vms": rng.randint(0, 50),
        }
        for _ in range(rng.randint(0, 200))
    ]
    rows.sort(key=lambda row: str(row["bucket"]))
    assert _used(rows, points, step) == _used_reference(rows, points, step)
