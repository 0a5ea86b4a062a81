"""Usage documents: allocated (from the allocation read model) and used (from the metrics read
model) resources over time, for the API routes and the console's Resources page alike.

Every list is filtered to the services the caller may read inside its query; datastore totals
(capacity, free space: the whole vCenter's) are shown to administrators only.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.runtime import Runtime
from api.access import readable_service_ids
from api.auth import Principal
from api.deps import parse_time
from domain.errors import ValidationError
from domain.service import Service
from domain.values import normalise_key
from projections.base import iso
from projections.metrics import SECONDS, average
from projections.store import Row
from projections.usage import series

MAX_POINTS = 1000
DEFAULT_POINTS = 288
MIN_STEP = 60
MAX_SPAN = timedelta(days=400)
READ_MODEL = "usage_allocations"
EARLIEST, LATEST = datetime(1970, 1, 2, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    step: int  # seconds

    def points(self) -> list[datetime]:
        """Every `step` from `start` (a multiple of the step) up to `end`; the use is averaged over
        [point, point + step), the allocation read when that window closes (at `end` for the last)."""
        count = int((self.end - self.start).total_seconds() // self.step) + 1
        return [self.start + timedelta(seconds=i * self.step) for i in range(count)]


def window(runtime: Runtime, start: str | None, end: str | None, step: int | None) -> Window:
    """from/to (ISO 8601; default: the last 24 hours) and step (seconds; default: ~288 points),
    bounded to MAX_POINTS points and a span of 400 days."""
    now = runtime.clock.now()
    to_text, from_text = parse_time(end, "to"), parse_time(start, "from")
    until = datetime.fromisoformat(to_text) if to_text else now
    for when, field in ((until, "to"), (datetime.fromisoformat(from_text) if from_text else None, "from")):
        # Usage exists only in this era; outside it, date arithmetic would overflow (years 1 and 9999).
        if when is not None and not EARLIEST <= when <= LATEST:
            raise ValidationError(f"{field} must be from {EARLIEST.year} to {LATEST.year}", field=field)
    since = datetime.fromisoformat(from_text) if from_text else until - timedelta(days=1)
    if since >= until:
        raise ValidationError("from must be before to", field="from")
    span = until - since
    if span > MAX_SPAN:
        raise ValidationError(f"from and to may be at most {MAX_SPAN.days} days apart", field="from")
    seconds = span.total_seconds()
    if step is None:
        step = max(300, -(-int(seconds) // DEFAULT_POINTS))
        step = -(-step // 300) * 300  # whole 5-minute buckets
    if not MIN_STEP <= step <= int(MAX_SPAN.total_seconds()):
        raise ValidationError(f"step must be from {MIN_STEP} to {int(MAX_SPAN.total_seconds())} seconds", field="step")
    # Points fall on multiples of the step (UTC epoch), so graphs of one step line up with buckets.
    first = int(since.timestamp()) // step * step
    count = (int(until.timestamp()) - first) // step + 1
    if count > MAX_POINTS:
        raise ValidationError(
            f"from..to at this step gives {count} points; at most {MAX_POINTS} "
            f"(use a step of at least {-(-int(seconds) // (MAX_POINTS - 2))} seconds)",
            field="step",
        )
    return Window(datetime.fromtimestamp(first, UTC), until.astimezone(UTC), step)


def _used(rows: Sequence[Row], points: Sequence[datetime], step: int) -> list[dict[str, Any] | None]:
    """Average use in each point's window [point, point + step): the mean over the buckets sampled
    in the window of each bucket's total (the sum over its rows of sum / samples). Bucket times are
    the read models' fixed-width UTC text, compared as text."""
    per_bucket: dict[str, list[float]] = {}
    for row in rows:
        samples = int(row["samples"]) or 1
        cpu, memory = int(row["cpu_mhz"]) / samples, int(row["memory_mib"]) / samples
        committed, vms = int(row["committed_bytes"]) / samples, int(row["vms"]) / samples
        totals = per_bucket.get(row["bucket"])
        if totals is None:
            per_bucket[row["bucket"]] = [cpu, memory, committed, vms]  # 0.0 + x is x: same sums
        else:
            totals[0] += cpu
            totals[1] += memory
            totals[2] += committed
            totals[3] += vms
    keys = sorted(per_bucket)
    result: list[dict[str, Any] | None] = []
    # Points are UTC: isoformat gives the stored text (iso()) at a fraction of strftime's cost.
    texts = [p.astimezone(UTC).isoformat(timespec="microseconds") for p in points]
    ends = [*texts[1:], iso(points[-1] + timedelta(seconds=step))] if points else []
    index = 0
    for start, end in zip(texts, ends, strict=True):
        first = bisect_left(keys, start, index)
        index = bisect_left(keys, end, first)
        n = index - first
        if not n:
            result.append(None)
            continue
        cpu = memory = committed = vms = 0.0
        for key in keys[first:index]:  # summed in bucket order, as before
            totals = per_bucket[key]
            cpu, memory, committed, vms = cpu + totals[0], memory + totals[1], committed + totals[2], vms + totals[3]
        result.append(
            {
                "cpu_mhz": round(cpu / n, 1),
                "memory_mib": round(memory / n, 1),
                "committed_gib": round(committed / n / 1024**3, 3),
                "vms": round(vms / n, 2),
            }
        )
    return result


def service_usage(
    runtime: Runtime, service: Service, stage: str | None, span: Window, min_position: int | None
) -> dict[str, Any]:
    """Allocated and used resources of one service (or one of its stages) at each point of `span`."""
    stage_name = service.stage(stage)["name"] if stage is not None else None
    position = runtime.read_models.wait(READ_MODEL, min_position, runtime.settings.read_wait_seconds)
    usage = runtime.usage
    points = span.points()
    intervals = usage.allocations.intervals(
        str(service.id), normalise_key(stage_name) if stage_name else None, span.start, span.end
    )
    # What was held when each point's window closes (the last one: at `to`), so the newest point
    # shows a deployment made since the window opened.
    ends = [min(p + timedelta(seconds=span.step), span.end) for p in points]
    allocated = series(intervals, ends)
    resolution = usage.metrics.retention.resolution_for(span.start, span.step, runtime.clock.now())
    rows = usage.metrics.buckets(resolution, span.start, span.end, service_id=str(service.id), stage=stage_name)
    used = _used(rows, points, span.step)
    return {
        "service_id": str(service.id),
        "stage": stage_name,
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "step": span.step,
        "resolution": resolution,
        "bucket_seconds": SECONDS[resolution],
        "points": [
            {"at": p.isoformat(), "allocated": a, "used": u} for p, a, u in zip(points, allocated, used, strict=True)
        ],
        "position": position,
    }


def stage_totals(runtime: Runtime, who: Principal, as_of: str | None, min_position: int | None) -> dict[str, Any]:
    """Allocated figures per stage of every service the caller may read, with the stage's quota."""
    when_text = parse_time(as_of, "as_of")
    when = datetime.fromisoformat(when_text) if when_text else None
    position = runtime.read_models.wait(READ_MODEL, min_position, runtime.settings.read_wait_seconds)
    readable = readable_service_ids(runtime, who)
    held = {(str(r["service_id"]), str(r["stage"])): r for r in runtime.usage.allocations.totals(when, readable)}
    stages: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for service in runtime.read_models.services():
        if readable is not None and str(service["id"]) not in readable:
            continue
        for stage in service["stages"]:
            key = (str(service["id"]), stage["name"])
            seen.add(key)
            stages.append(_stage_row(service, stage["name"], held.get(key), stage.get("quota")))
    # Stages held at `as_of` that have since been renamed or removed keep their name of then.
    names = {str(s["id"]): s for s in runtime.read_models.services(include_retired=True)}
    for key, row in sorted(held.items()):
        if key not in seen and key[0] in names:
            stages.append(_stage_row(names[key[0]], key[1], row, None))
    return {"as_of": when.isoformat() if when else None, "stages": stages, "position": position}


def _stage_row(service: Row, stage: str, row: Row | None, quota: dict[str, int] | None) -> dict[str, Any]:
    figures = {k: int(row[k]) if row else 0 for k in ("vcpus", "memory_mib", "disk_gib", "machines")}
    return {
        "service_id": str(service["id"]),
        "service": service["name"],
        "stage": stage,
        "allocated": figures,
        "quota": quota,
    }


def datastore_usage(runtime: Runtime, who: Principal, span: Window) -> dict[str, Any]:
    """Disk use per datastore over time (administrators), and per datastore, service and stage
    (the services the caller may read)."""
    metrics = runtime.usage.metrics
    resolution = metrics.retention.resolution_for(span.start, span.step, runtime.clock.now())
    points = span.points()
    datastores: list[dict[str, Any]] = []
    if who.is_admin:
        by_name: dict[str, list[Row]] = {}
        for row in metrics.datastore_buckets(resolution, span.start, span.end):
            by_name.setdefault(str(row["datastore"]), []).append(row)
        for name, rows in sorted(by_name.items()):
            datastores.append({"datastore": name, "points": _datastore_points(rows, points, span.step)})
    readable = readable_service_ids(runtime, who)
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in metrics.buckets(
        resolution, span.start, span.end, service_ids=readable, by=("service_id", "stage", "datastore")
    ):
        groups.setdefault((str(row["datastore"]), str(row["service_id"]), str(row["stage"])), []).append(row)
    names = {str(s["id"]): s["name"] for s in runtime.read_models.services(include_retired=True)}
    consumers = []
    for (datastore, service_id, stage), rows in sorted(groups.items()):
        used = _used(rows, points, span.step)
        consumers.append(
            {
                "datastore": datastore,
                "service_id": service_id,
                "service": names.get(service_id, service_id),
                "stage": stage,
                "points": [
                    {"at": p.isoformat(), "committed_gib": u["committed_gib"] if u else None}
                    for p, u in zip(points, used, strict=True)
                ],
            }
        )
    return {
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "step": span.step,
        "resolution": resolution,
        "datastores": datastores,
        "consumers": consumers,
    }


def _datastore_points(rows: Sequence[Row], points: Sequence[datetime], step: int) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    buckets = [(datetime.fromisoformat(str(r["bucket"])), r) for r in rows]
    for point in points:
        end = point + timedelta(seconds=step)
        inside = [r for at, r in buckets if point <= at < end]
        if not inside:
            result.append({"at": point.isoformat(), "capacity_gib": None, "free_gib": None})
            continue
        capacity = sum(average(r, "capacity_bytes") for r in inside) / len(inside)
        free = sum(average(r, "free_bytes") for r in inside) / len(inside)
        result.append(
            {
                "at": point.isoformat(),
                "capacity_gib": round(capacity / 1024**3, 3),
                "free_gib": round(free / 1024**3, 3),
            }
        )
    return result
