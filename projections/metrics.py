"""Metrics read model: resources used, as sampled from vCenter by the collector.

Not built from events (vCenter's figures are observations, not decisions): the collector writes
each sample into two resolutions at once, 5-minute and hourly buckets, as sums plus a count of
samples taken in the bucket, so a bucket's average is sum / samples and downsampling costs nothing
at read time. Retention is bounded: 5-minute buckets are kept `fine_days` (7), hourly ones
`coarse_days` (365); older buckets are deleted after each sample.

Rows are per (bucket, service, stage, datastore): the VMs of the deployments living there, as the
deployments read model places them when sampled.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.metrics import UsageSample
from projections.base import iso
from projections.store import ReadStore, Row

FINE, COARSE = "5m", "1h"
SECONDS = {FINE: 300, COARSE: 3600}
DDL = (
    """CREATE TABLE IF NOT EXISTS sk_usage_points (
        resolution TEXT NOT NULL,
        bucket TEXT NOT NULL,
        service_id TEXT NOT NULL,
        stage TEXT NOT NULL,
        datastore TEXT NOT NULL,
        vms BIGINT NOT NULL,
        cpu_mhz BIGINT NOT NULL,
        memory_mib BIGINT NOT NULL,
        committed_bytes BIGINT NOT NULL,
        PRIMARY KEY (resolution, service_id, bucket, stage, datastore)
    )""",
    """CREATE TABLE IF NOT EXISTS sk_usage_datastores (
        resolution TEXT NOT NULL,
        bucket TEXT NOT NULL,
        datastore TEXT NOT NULL,
        capacity_bytes BIGINT NOT NULL,
        free_bytes BIGINT NOT NULL,
        samples BIGINT NOT NULL,
        PRIMARY KEY (resolution, bucket, datastore)
    )""",
    """CREATE TABLE IF NOT EXISTS sk_usage_cycles (
        resolution TEXT NOT NULL,
        bucket TEXT NOT NULL,
        samples BIGINT NOT NULL,
        PRIMARY KEY (resolution, bucket)
    )""",
    "CREATE INDEX IF NOT EXISTS sk_usage_points_bucket ON sk_usage_points (resolution, bucket)",
)
TABLES = ("sk_usage_points", "sk_usage_datastores", "sk_usage_cycles")


def bucket_of(at: datetime, resolution: str) -> datetime:
    """The start of the bucket holding `at`."""
    seconds = SECONDS[resolution]
    epoch = int(at.astimezone(UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


@dataclass(frozen=True)
class Retention:
    fine_days: int = 7
    coarse_days: int = 365

    def resolution_for(self, start: datetime, step_seconds: int, now: datetime) -> str:
        """5-minute buckets while they are kept and the step is finer than an hour; else hourly."""
        fine_kept = start >= now - timedelta(days=self.fine_days)
        return FINE if fine_kept and step_seconds < SECONDS[COARSE] else COARSE


class Metrics:
    def __init__(self, store: ReadStore, retention: Retention) -> None:
        self.store = store
        self.retention = retention

    def install(self) -> None:
        with self.store.transaction() as cursor:
            for statement in DDL:
                cursor.execute(statement)

    def record(self, sample: UsageSample, owners: Mapping[str, tuple[str, str]], at: datetime) -> int:
        """Add one sample to the buckets holding `at`; `owners` maps a deployment id to its
        (service id, stage). VMs of deployments not (yet) known are left out. Returns the VMs kept."""
        groups: dict[tuple[str, str, str], list[int]] = {}
        kept = 0
        for vm in sample.vms:
            owner = owners.get(str(vm.deployment_id))
            if owner is None:
                continue
            kept += 1
            sums = groups.setdefault((owner[0], owner[1], vm.datastore or ""), [0, 0, 0, 0])
            sums[0] += 1
            sums[1] += vm.cpu_mhz
            sums[2] += vm.memory_mib
            sums[3] += vm.committed_bytes
        with self.store.transaction() as cursor:
            for resolution in (FINE, COARSE):
                bucket = iso(bucket_of(at, resolution))
                cursor.execute(
                    "INSERT INTO sk_usage_cycles (resolution, bucket, samples) VALUES (%s, %s, 1) "
                    "ON CONFLICT (resolution, bucket) DO UPDATE SET samples = sk_usage_cycles.samples + 1",
                    (resolution, bucket),
                )
                cursor.executemany(
                    "INSERT INTO sk_usage_points (resolution, bucket, service_id, stage, datastore, vms, cpu_mhz, "
                    "memory_mib, committed_bytes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (resolution, service_id, bucket, stage, datastore) DO UPDATE SET "
                    "vms = sk_usage_points.vms + excluded.vms, "
                    "cpu_mhz = sk_usage_points.cpu_mhz + excluded.cpu_mhz, "
                    "memory_mib = sk_usage_points.memory_mib + excluded.memory_mib, "
                    "committed_bytes = sk_usage_points.committed_bytes + excluded.committed_bytes",
                    [(resolution, bucket, *key, *sums) for key, sums in sorted(groups.items())],
                )
                cursor.executemany(
                    "INSERT INTO sk_usage_datastores (resolution, bucket, datastore, capacity_bytes, free_bytes, "
                    "samples) VALUES (%s, %s, %s, %s, %s, 1) ON CONFLICT (resolution, bucket, datastore) DO UPDATE "
                    "SET capacity_bytes = sk_usage_datastores.capacity_bytes + excluded.capacity_bytes, "
                    "free_bytes = sk_usage_datastores.free_bytes + excluded.free_bytes, "
                    "samples = sk_usage_datastores.samples + 1",
                    [(resolution, bucket, d.name, d.capacity_bytes, d.free_bytes) for d in sample.datastores],
                )
            self._prune(cursor, at)
        return kept

    def _prune(self, cursor: Any, now: datetime) -> None:
        for resolution, days in ((FINE, self.retention.fine_days), (COARSE, self.retention.coarse_days)):
            oldest = iso(bucket_of(now - timedelta(days=days), resolution))
            for table in TABLES:
                cursor.execute(f"DELETE FROM {table} WHERE resolution = %s AND bucket < %s", (resolution, oldest))  # noqa: S608

    def buckets(
        self,
        resolution: str,
        start: datetime,
        end: datetime,
        service_id: str | None = None,
        stage: str | None = None,
        service_ids: Collection[str] | None = None,
        by: Sequence[str] = (),
    ) -> list[Row]:
        """Average use per bucket in [start, end] (sum / samples taken in the bucket), grouped by
        bucket and the columns `by` (service_id, stage, datastore)."""
        if service_ids is not None and not service_ids:
            return []
        clauses = ["p.resolution = %s", "p.bucket >= %s", "p.bucket <= %s"]
        params: list[Any] = [resolution, iso(bucket_of(start, resolution)), iso(end)]
        if service_id is not None:
            clauses.append("p.service_id = %s")
            params.append(service_id)
        if stage is not None:
            clauses.append("p.stage = %s")
            params.append(stage)
        if service_ids is not None:
            clauses.append(f"p.service_id IN ({', '.join(['%s'] * len(service_ids))})")
            params.extend(sorted(service_ids))
        group = ", ".join(["p.bucket", *(f"p.{column}" for column in by)])
        return self.store.query(
            # PostgreSQL sums BIGINTs as NUMERIC (Decimals in Python, slow to build and convert): the
            # sums are cast back to BIGINT, which they fit (one service's bytes in one bucket).
            f"SELECT {group}, c.samples, CAST(SUM(p.vms) AS BIGINT) AS vms, "  # noqa: S608
            "CAST(SUM(p.cpu_mhz) AS BIGINT) AS cpu_mhz, CAST(SUM(p.memory_mib) AS BIGINT) AS memory_mib, "
            "CAST(SUM(p.committed_bytes) AS BIGINT) AS committed_bytes "
            "FROM sk_usage_points p JOIN sk_usage_cycles c ON c.resolution = p.resolution AND c.bucket = p.bucket "
            f"WHERE {' AND '.join(clauses)} GROUP BY {group}, c.samples ORDER BY {group}",
            params,
        )

    def datastore_buckets(self, resolution: str, start: datetime, end: datetime) -> list[Row]:
        """Average capacity and free space per datastore and bucket in [start, end]."""
        return self.store.query(
            "SELECT bucket, datastore, capacity_bytes, free_bytes, samples FROM sk_usage_datastores "
            "WHERE resolution = %s AND bucket >= %s AND bucket <= %s ORDER BY datastore, bucket",
            (resolution, iso(bucket_of(start, resolution)), iso(end)),
        )


def average(row: Row, column: str) -> float:
    samples = int(row["samples"]) or 1
    return int(row[column]) / samples
