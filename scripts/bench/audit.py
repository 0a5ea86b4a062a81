"""History at scale on PostgreSQL: projection catch-up, audit queries, as_of reads, export.

Builds 100,000 events over 200 services (one configuration per service; one of them reaches
5,000 versions), with event times spread over a year by a synthetic clock (the library's
timestamp function is replaced for the build only, so "one month" means something). Then, next
to baselines measured in the same run, prints:
- projection catch-up (all read models) as a ratio of the raw notification-log read rate (goal >= 0.5):
  from zero (a rebuild: the plain indexes are built once at the end; the same again without the
  reader process, for comparison) and, separately, the second
  half of the log applied with every index in place (a follower that fell behind); `--repeat` runs
  each of them (and the raw read next to it) several times: min/median/max
- audit query for one service over one month: p50 / p99 (goal p99 < 50 ms)
- as_of read of the 5,000-version configuration: p50 (goal < 10 ms)
- JSON Lines export of the whole audit log: entries/s (goal >= 20,000) and peak RSS (goal < 200 MiB)
Usage: .venv/bin/python -m scripts.bench.audit [--events 100000] [--services 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import eventsourcing.domain

from adapters.runtime import Runtime
from adapters.settings import Settings
from domain.configuration import Configuration
from domain.values import Machine
from projections.audit_queries import AuditFilter
from projections.base import Projection
from projections.follower import ProjectionFollower
from scripts.bench.common import schema, summary

START = datetime(2025, 11, 1, tzinfo=UTC)


class SyntheticClock:
    def __init__(self, step: timedelta) -> None:
        self.now = START
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def machine(name: str, cpus: int) -> Machine:
    return Machine.parse({"name": name, "template": "tpl-ubuntu-2404", "cpus": cpus, "nics": [{"network": "front"}]})


def build(runtime: Runtime, services: int, events: int, big_versions: int) -> tuple[UUID, list[UUID]]:
    app = runtime.app
    app.import_templates(None, True, actor="bench")
    service_ids, configs = [], []
    for i in range(services):
        # A resource pool belongs to one service.
        stage_list = [
            {"name": s, "resource_pool": f"/DC0/host/DC0_C0/Resources/svc-{i:03d}-{s}"} for s in ("int", "test", "prod")
        ]
        service_id = app.register_service(f"svc-{i:03d}", "", stage_list, actor=f"owner{i % 7}").value.id
        service_ids.append(service_id)
        configs.append(
            app.create_configuration(
                service_id, "main", "", [{"name": "front"}], [machine("web1", 2).to_dict()], actor=f"owner{i % 7}"
            ).value.id
        )
    remaining = events - app.head()
    per_config = max(1, (remaining - big_versions) // max(1, services - 1))
    targets = {cid: per_config for cid in configs}
    targets[configs[0]] = big_versions - 1
    chunk = 50
    while any(targets.values()):
        for cid, left in list(targets.items()):
            if not left:
                continue
            configuration = app.load(Configuration, cid, "configuration")
            for n in range(min(chunk, left)):
                version = configuration.version
                if n % 2:
                    configuration.revise(f"revision {version}", None, None, actor="dev1", reason="tuning")
                else:
                    configuration.change_machine("web1", machine("web1", 1 + version % 16), "dev2", "sizing")
            app.commit(configuration)
            targets[cid] = left - min(chunk, left)
    return configs[0], service_ids


def history(runtime: Runtime, services: int, events: int, big_versions: int) -> tuple[UUID, list[UUID]]:
    """`build` with event times spread over a year by the synthetic clock (so "one month" means something)."""
    original = eventsourcing.domain.datetime_now_with_tzinfo
    eventsourcing.domain.datetime_now_with_tzinfo = SyntheticClock(timedelta(days=365) / events)
    try:
        return build(runtime, services, events, big_versions)
    finally:
        eventsourcing.domain.datetime_now_with_tzinfo = original


def raw_read_rate(runtime: Runtime) -> float:
    started, count, start = time.perf_counter(), 0, 1
    while batch := runtime.app.select_notifications(start, 1000):
        count += len(batch)
        start = batch[-1].id + 1
    return count / (time.perf_counter() - started)


def reset(runtime: Runtime, projections: list[Projection]) -> None:
    """Every row and position of these read models gone, as for a rebuild."""
    with runtime.store.transaction() as cursor:
        for projection in projections:
            for table in projection.tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
            cursor.execute("UPDATE sk_tracking SET position = 0 WHERE name = %s", (projection.name,))


def spread(ratios: list[float]) -> str:
    return f"min {min(ratios):.2f}x / median {statistics.median(ratios):.2f}x / max {max(ratios):.2f}x"


def catch_up(runtime: Runtime, head: int, repeat: int) -> None:
    """Catch-up rates next to the raw read rate measured just before each of them."""
    everything = runtime.projections
    audit = [p for p in everything if p.name == "audit"]
    figures: dict[str, list[tuple[float, float]]] = {"zero": [], "in_process": [], "indexed": [], "audit": []}
    for _ in range(repeat):
        reset(runtime, everything)
        raw = max(raw_read_rate(runtime) for _ in range(2))
        started = time.perf_counter()
        runtime.projection_follower.catch_up()
        figures["zero"].append((head / (time.perf_counter() - started), raw))

        # The same without the reader process (projections/pipeline.py): parsed in this interpreter.
        reset(runtime, everything)
        raw = max(raw_read_rate(runtime) for _ in range(2))
        started = time.perf_counter()
        ProjectionFollower(runtime.app, runtime.store, everything).catch_up()
        figures["in_process"].append((head / (time.perf_counter() - started), raw))

        # A follower that fell behind: the first half applied (and indexed), then the second half timed.
        reset(runtime, everything)
        follower = ProjectionFollower(runtime.app, runtime.store, everything, reader=runtime.projection_follower.reader)
        follower.catch_up(until=head // 2)
        halfway = follower.position()
        raw = max(raw_read_rate(runtime) for _ in range(2))
        started = time.perf_counter()
        follower.catch_up()
        figures["indexed"].append(((head - halfway) / (time.perf_counter() - started), raw))

        reset(runtime, audit)
        raw = max(raw_read_rate(runtime) for _ in range(2))
        started = time.perf_counter()
        ProjectionFollower(runtime.app, runtime.store, audit, reader=runtime.projection_follower.reader).catch_up()
        figures["audit"].append((head / (time.perf_counter() - started), raw))
    raws = [raw for runs in figures.values() for _, raw in runs]
    print(f"raw notification-log read: {min(raws):,.0f} .. {max(raws):,.0f} events/s (page 1,000)")
    for key, label in (
        ("zero", "all read models, from zero (rebuild)"),
        ("in_process", "same, read and parsed in this process (no reader process)"),
        ("indexed", "all read models, second half, indexes in place"),
        ("audit", "audit log only, from zero"),
    ):
        rates = [rate for rate, _ in figures[key]]
        print(
            f"projection catch-up, {label}: median {statistics.median(rates):,.0f} events/s; "
            f"vs raw read {spread([rate / raw for rate, raw in figures[key]])}"
            + (" (goal >= 0.5)" if key in ("zero", "indexed") else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--big", type=int, default=5_000, help="versions of the largest configuration")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each catch-up measurement")
    args = parser.parse_args()
    with schema() as (_, url):
        runtime = Runtime(Settings(database_url=url, admin_password="bench"))
        started = time.perf_counter()
        big, service_ids = history(runtime, args.services, args.events, args.big)
        built = time.perf_counter() - started
        head = runtime.app.head()
        print(
            f"history: {head} events over {args.services} services in {built:.1f}s "
            f"(largest configuration: {runtime.app.configuration(big).version} versions)"
        )

        catch_up(runtime, head, args.repeat)

        rng = random.Random(7)
        latencies = []
        for _ in range(300):
            service_id = str(rng.choice(service_ids))
            month = START + timedelta(days=rng.randrange(0, 330))
            filters = AuditFilter(
                service_id=service_id,
                since=month.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
                until=(month + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
            )
            started = time.perf_counter()
            runtime.audit.page(filters, None, 100)
            latencies.append(time.perf_counter() - started)
        print(f"audit query, one service over one month (100 newest): {summary(latencies)} (goal p99 < 50 ms)")

        versions = runtime.audit.history(str(big))
        as_of_latencies = []
        for _ in range(300):
            when = rng.choice(versions)["at"]
            started = time.perf_counter()
            version = runtime.audit.configuration_version_at(str(big), when)
            assert version is not None
            configuration = runtime.app.configuration(big, version=version)
            as_of_latencies.append(time.perf_counter() - started)
            assert configuration.version == version
        print(f"as_of read, {len(versions)}-version configuration: {summary(as_of_latencies)} (goal p50 < 10 ms)")

        entries = runtime.store.query("SELECT COUNT(*) AS n FROM sk_audit")[0]["n"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        output = Path(tempfile.mkdtemp()) / "audit.jsonl"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "api.cli", "audit", "export", "--format", "jsonl", "--output", str(output)],
            env={**os.environ, "STAGEKEEPER_DATABASE_URL": url, "STAGEKEEPER_ADMIN_PASSWORD": "bench"},
            check=True,
        )
        elapsed = time.perf_counter() - started
        with output.open("rb") as exported:
            lines = sum(1 for _ in exported)
        assert lines == entries, (lines, entries)
        output.unlink()
        peak_mib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        print(
            f"export JSON Lines: {entries:,} entries in {elapsed:.2f}s = {entries / elapsed:,.0f} entries/s "
            f"(goal >= 20,000; includes process start-up), peak RSS {peak_mib:.0f} MiB (goal < 200 MiB)"
        )
        runtime.close()


if __name__ == "__main__":
    main()
