"""Allocation read model: what each deployment held in each stage, as time intervals.

Fed by Deployment events: after each one the deployment's aggregate (at that event's version) says
what it holds (`domain.usage.allocation`: the recorded machines, in its stage and a move's target
stage, until undeployed). A change closes the deployment's open interval for that stage and opens
another, so "allocated as of T" is the sum of the intervals covering T, equal to replaying every
deployment to T (tests/contract/test_usage_allocations.py checks both).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.deployment import Deployment
from domain.usage import Figures, allocation
from domain.values import normalise_key
from projections.base import Projection, iso, on
from projections.store import Cursor, ReadStore, Row

KEPT = 5000
FIGURES = ("vcpus", "memory_mib", "disk_gib", "machines")


class AllocationsProjection(Projection):
    name = "usage_allocations"
    schema_version = 1
    tables = ("sk_usage_allocations",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS sk_usage_allocations (
            deployment_id TEXT NOT NULL,
            service_id TEXT NOT NULL,
            stage TEXT NOT NULL,
            stage_key TEXT NOT NULL,
            from_position BIGINT NOT NULL,
            from_at TEXT NOT NULL,
            to_at TEXT,
            vcpus BIGINT NOT NULL,
            memory_mib BIGINT NOT NULL,
            disk_gib BIGINT NOT NULL,
            machines BIGINT NOT NULL,
            PRIMARY KEY (deployment_id, stage_key, from_position)
        )""",
        "CREATE INDEX IF NOT EXISTS sk_usage_allocations_service ON sk_usage_allocations (service_id, from_at)",
        "CREATE INDEX IF NOT EXISTS sk_usage_allocations_open ON sk_usage_allocations (deployment_id, to_at)",
        "CREATE INDEX IF NOT EXISTS sk_usage_allocations_at ON sk_usage_allocations (from_at, to_at)",
    )

    def __init__(self, load: Callable[[UUID, int], Deployment]) -> None:
        super().__init__()
        self._load = load
        self._kept: dict[UUID, Deployment] = {}
        self.start_batch()

    def start_batch(self) -> None:
        # Open intervals known in this batch: deployment -> stage key -> row. Forgotten when a
        # batch does not commit (it is read again from the table).
        self._open: dict[str, dict[str, dict[str, Any]]] = {}
        # Rows opened and intervals closed in this batch, written by `flush` (opened first).
        self._opened: list[tuple[Any, ...]] = []
        self._closed: list[tuple[Any, ...]] = []

    def flush(self, cursor: Cursor) -> None:
        if self._opened:
            cursor.executemany(
                "INSERT INTO sk_usage_allocations (deployment_id, service_id, stage, stage_key, from_position, "
                "from_at, to_at, vcpus, memory_mib, disk_gib, machines) "
                "VALUES (%s, %s, %s, %s, %s, %s, NULL, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                self._opened,
            )
        if self._closed:
            cursor.executemany(
                "UPDATE sk_usage_allocations SET to_at = %s "
                "WHERE deployment_id = %s AND stage_key = %s AND from_position = %s",
                self._closed,
            )
        self.start_batch()

    def _at(self, event: Any) -> Deployment:
        deployment_id: UUID = event.originator_id
        kept = self._kept.pop(deployment_id, None)
        if kept is not None and kept.version == event.originator_version - 1:
            event.mutate(kept)
            deployment = kept
        elif event.originator_version == 1:
            deployment = event.mutate(None)
        else:
            deployment = self._load(deployment_id, event.originator_version)
        if len(self._kept) >= KEPT:
            self._kept.clear()
        self._kept[deployment_id] = deployment
        return deployment

    def _open_rows(self, cursor: Cursor, deployment_id: str) -> dict[str, dict[str, Any]]:
        found = self._open.get(deployment_id)
        if found is None:
            cursor.execute(
                "SELECT stage, stage_key, from_position, vcpus, memory_mib, disk_gib, machines "
                "FROM sk_usage_allocations WHERE deployment_id = %s AND to_at IS NULL",
                (deployment_id,),
            )
            found = {row["stage_key"]: dict(row) for row in cursor.fetchall()}
            self._open[deployment_id] = found
        return found

    @on("Deployment.*")
    def changed(self, event: Any, position: int, cursor: Cursor) -> None:
        deployment = self._at(event)
        deployment_id, at = str(deployment.id), iso(event.timestamp)
        if event.originator_version == 1:
            # A deployment's first event: it holds no interval yet.
            self._open.setdefault(deployment_id, {})
        current = self._open_rows(cursor, deployment_id)
        wanted = {normalise_key(stage): (stage, figures) for stage, figures in allocation(deployment).items()}
        for key, row in list(current.items()):
            kept = wanted.get(key)
            if kept is not None and kept[0] == row["stage"] and kept[1] == _figures(row):
                continue
            self._closed.append((at, deployment_id, key, row["from_position"]))
            del current[key]
        for key, (stage, figures) in wanted.items():
            if key in current:
                continue
            self._opened.append(
                (deployment_id, str(deployment.service_id), stage, key, position, at, *_values(figures))
            )
            current[key] = {"stage": stage, "stage_key": key, "from_position": position, **figures.as_dict()}


def _figures(row: Row) -> Figures:
    return Figures(*(int(row[name]) for name in FIGURES))


def _values(figures: Figures) -> tuple[int, ...]:
    return tuple(getattr(figures, name) for name in FIGURES)


class Allocations:
    """Queries of the allocation read model (times are ISO-8601 UTC text, as stored)."""

    def __init__(self, store: ReadStore) -> None:
        self.store = store

    def totals(
        self, at: datetime | None, service_ids: Collection[str] | None, service_id: str | None = None
    ) -> list[Row]:
        """Per (service, stage): the figures held at `at` (None: now). `service_ids` is the caller's
        readable services (None: all), applied inside the query."""
        if service_ids is not None and not service_ids:
            return []
        clauses, params = _filter(service_ids, service_id)
        if at is None:
            clauses.append("to_at IS NULL")
        else:
            clauses.append("from_at <= %s AND (to_at IS NULL OR to_at > %s)")
            params.extend([iso(at), iso(at)])
        sums = ", ".join(f"SUM({name}) AS {name}" for name in FIGURES)
        return self.store.query(
            f"SELECT service_id, stage, {sums} FROM sk_usage_allocations WHERE "  # noqa: S608
            + " AND ".join(clauses)
            + " GROUP BY service_id, stage ORDER BY service_id, stage",
            params,
        )

    def intervals(self, service_id: str, stage_key: str | None, start: datetime, end: datetime) -> list[Row]:
        """The service's intervals overlapping [start, end]."""
        clauses, params = _filter(None, service_id)
        if stage_key is not None:
            clauses.append("stage_key = %s")
            params.append(stage_key)
        clauses.append("from_at <= %s AND (to_at IS NULL OR to_at > %s)")
        params.extend([iso(end), iso(start)])
        return self.store.query(
            "SELECT stage, from_at, to_at, vcpus, memory_mib, disk_gib, machines FROM sk_usage_allocations WHERE "  # noqa: S608
            + " AND ".join(clauses),
            params,
        )


def _filter(service_ids: Collection[str] | None, service_id: str | None) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if service_id is not None:
        clauses.append("service_id = %s")
        params.append(service_id)
    if service_ids is not None:
        clauses.append(f"service_id IN ({', '.join(['%s'] * len(service_ids))})")
        params.extend(sorted(service_ids))
    return clauses, params


def series(rows: Sequence[Row], points: Sequence[datetime]) -> list[dict[str, int]]:
    """The figures held at each point (ascending), from intervals (rows of `Allocations.intervals`):
    one sweep over the intervals' starts and ends, an interval counting at T when from_at <= T < to_at."""
    changes: list[tuple[str, int, Figures]] = []
    for row in rows:
        figures = _figures(row)
        changes.append((row["from_at"], 1, figures))
        if row["to_at"] is not None:
            changes.append((row["to_at"], -1, figures))
    changes.sort(key=lambda change: change[0])
    held = [0, 0, 0, 0]
    result = []
    index = 0
    for point in points:
        at = point.astimezone(UTC).isoformat(timespec="microseconds")  # iso(point), faster
        while index < len(changes) and changes[index][0] <= at:
            _, sign, figures = changes[index]
            for i, name in enumerate(FIGURES):
                held[i] += sign * getattr(figures, name)
            index += 1
        result.append(dict(zip(FIGURES, held, strict=True)))
    return result
