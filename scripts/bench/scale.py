"""Scale (issue 15): a large store built with the application, then the reads and the rebuild.

History: `--services` services (five stages each, one configuration each), `--deployments`
deployment requests spread over services and stages, then configuration revisions and machine
changes until `--events` stored events (the first configuration reaches `--big` versions). Every
event is made by the application's own commands and aggregates, so the stored events are the
real ones; the bulk writer (scripts/bench/bulk.py) writes them `--batch` to a transaction
(byte-identical to one command a transaction, which `--batch 0` restores); event times are
spread over a year by a synthetic clock (as in scripts/bench/audit.py).
Workers are off: deployments stay requested (the vCenter is not part of this benchmark).

Prints, next to a baseline measured in the same run (GET /healthz on the same server):
- GET /api/v1/board p50/p99 (goal p99 < 50 ms): its first page (50 services, 20 deployments
  listed per stage), a later page of 200, one service, the board half-way through the history
  (`as_of`, a few rounds: no goal of its own); and in process the read of the whole board
  (every live deployment: what /board returned before it was paged) against one page
- audit query of one service over one month p99 (goal < 50 ms), and of the whole log over one month
  (the console's audit page with only a time window; no goal of its own: the same 50 ms)
- as_of read of the largest configuration p50 (goal < 10 ms)
- rebuild of every read model from position zero (goal < 5 minutes)
- the server's peak RSS after those requests (goal < 500 MiB), and the event store's size on disk
The issue's size is 1,000,000 events, 2,000 services, 50,000 deployments and 5,000 versions
(the defaults); every size is a parameter for a machine or a time budget that cannot hold it.
`--keep` leaves the schema in place (its name is printed) and `--schema NAME` measures such a
kept store again without building it (the history's sizes are then read from the store).
Usage: .venv/bin/python -m scripts.bench.scale [--events 1000000] [--services 2000]
       [--deployments 50000] [--big 5000] [--rounds 200] [--batch 5000] [--keep | --schema NAME]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse
from uuid import UUID

import eventsourcing.domain
import httpx

from adapters.runtime import Runtime
from adapters.settings import Settings
from domain.configuration import Configuration
from projections.audit_queries import AuditFilter
from scripts.bench.audit import START, SyntheticClock, machine
from scripts.bench.bulk import Bulk
from scripts.bench.common import PASSWORD, URL, percentile, schema, served, summary

STAGES = ("int", "test", "staging", "preprod", "prod")
ROOT = "/DC0/host/DC0_C0/Resources"


def build(
    runtime: Runtime, services: int, deployments: int, events: int, big: int, batch: int = 0
) -> tuple[UUID, list[str]]:
    """The history, by the application's commands; `batch` > 0: their events written that many to a
    transaction (scripts/bench/bulk.py), else one command per transaction."""
    with Bulk(runtime.app, batch) if batch else nullcontext() as writer:
        return _build(runtime, services, deployments, events, big, writer)


def _build(
    runtime: Runtime, services: int, deployments: int, events: int, big: int, writer: Bulk | None
) -> tuple[UUID, list[str]]:
    app = runtime.app
    app.import_templates(None, True, actor="bench")
    service_ids, configurations = [], []
    for i in range(services):
        stages = [{"name": s, "resource_pool": f"{ROOT}/svc{i:05d}-{s}"} for s in STAGES]
        service_id = app.register_service(f"svc-{i:05d}", "", stages, actor=f"owner{i % 7}").value.id
        service_ids.append(str(service_id))
        created = app.create_configuration(
            service_id, "main", "", [{"name": "front"}], [machine("web1", 2).to_dict()], actor=f"owner{i % 7}"
        )
        configurations.append(created.value.id)
    for n in range(deployments):
        app.deploy(configurations[n % services], STAGES[(n // services) % len(STAGES)], actor=f"dev{n % 5}")
    if writer is not None:
        writer.flush()
    remaining = max(0, events - app.head())
    targets = {cid: 0 for cid in configurations}
    targets[configurations[0]] = min(remaining, big - 1)
    rest = remaining - targets[configurations[0]]
    for k, cid in enumerate(configurations[1:]):
        targets[cid] = rest // max(1, services - 1) + (1 if k < rest % max(1, services - 1) else 0)
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
    return configurations[0], service_ids


@contextmanager
def store(name: str | None, keep: bool) -> Iterator[tuple[str, str]]:
    """A new schema (dropped afterwards unless `keep`), or the kept schema `name`."""
    if name is not None:
        yield name, f"{URL}?schema={name}"
        return
    with schema(keep) as created:
        yield created


def kept_history(runtime: Runtime) -> tuple[UUID, list[str]]:
    """The largest configuration and the services of a kept store (what `build` returned)."""
    rows = runtime.store.query(
        "SELECT originator_id AS id FROM stagekeeper_events WHERE topic LIKE %s "
        "GROUP BY originator_id ORDER BY max(originator_version) DESC LIMIT 1",
        ["stagekeeper:Configuration.%"],
    )
    services = runtime.store.query(
        "SELECT DISTINCT originator_id AS id FROM stagekeeper_events WHERE topic = %s",
        ["stagekeeper:Service.Registered"],
    )
    return UUID(str(rows[0]["id"])), sorted(str(r["id"]) for r in services)


def analyse(runtime: Runtime, schema_name: str) -> float:
    """ANALYZE every table of the store: what autovacuum does on a running server after a load like
    this one (the test server runs with autovacuum off; without statistics the planner scans whole
    tables instead of using the board's indexes)."""
    started = time.perf_counter()
    tables = runtime.store.query("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema_name])
    with runtime.store.transaction() as cursor:
        for row in tables:
            cursor.execute(f'ANALYZE "{schema_name}"."{row["tablename"]}"')
    return time.perf_counter() - started


def rebuild_all(runtime: Runtime) -> float:
    with runtime.store.transaction() as cursor:
        for projection in runtime.projections:
            for table in projection.tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
            cursor.execute("UPDATE sk_tracking SET position = 0 WHERE name = %s", (projection.name,))
    started = time.perf_counter()
    runtime.projection_follower.catch_up()
    return time.perf_counter() - started


def timed(client: httpx.Client, path: str, rounds: int) -> list[float]:
    client.get(path).raise_for_status()
    latencies = []
    for _ in range(rounds):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        latencies.append(time.perf_counter() - started)
    return latencies


def measured(read: Callable[[], object]) -> float:
    started = time.perf_counter()
    read()
    return time.perf_counter() - started


def server_peak_rss_mib(port: int) -> float:
    """VmHWM of the `stagekeeper serve` process listening on `port` (found by its command line)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"serve" in cmdline and str(port).encode() in cmdline:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            continue
    raise RuntimeError(f"no server process on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--services", type=int, default=2_000)
    parser.add_argument("--deployments", type=int, default=50_000)
    parser.add_argument("--big", type=int, default=5_000, help="versions of the largest configuration")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument(
        "--batch",
        type=int,
        default=5000,
        help="events written per transaction by the bulk writer (0: one command per transaction)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the schema in place (its name is printed)")
    parser.add_argument("--schema", help="measure this kept schema again, without building")
    args = parser.parse_args()
    with store(args.schema, args.keep) as (schema_name, url), tempfile.TemporaryDirectory() as tmp:
        if args.keep:
            print(f"schema kept: {schema_name}", flush=True)
        runtime = Runtime(Settings(database_url=url, admin_password=PASSWORD))
        if args.schema is None:
            clock = SyntheticClock(timedelta(days=365) / args.events)
            original = eventsourcing.domain.datetime_now_with_tzinfo
            eventsourcing.domain.datetime_now_with_tzinfo = clock
            try:
                started = time.perf_counter()
                big, service_ids = build(runtime, args.services, args.deployments, args.events, args.big, args.batch)
                built = time.perf_counter() - started
            finally:
                eventsourcing.domain.datetime_now_with_tzinfo = original
            how = f"{args.batch:,} events a transaction" if args.batch else "one command a transaction"
            made = f"built in {built:.0f} s ({runtime.app.head() / built:,.0f} events/s, {how})"
        else:
            big, service_ids = kept_history(runtime)
            made = f"kept schema {schema_name}"
        head = runtime.app.head()
        deployments = (
            args.deployments
            if args.schema is None
            else int(runtime.store.query("SELECT COUNT(*) AS n FROM sk_deployments")[0]["n"])
        )
        print(
            f"history: {head:,} events, {len(service_ids):,} services, {deployments:,} deployments, largest "
            f"configuration {runtime.app.configuration(big).version:,} versions, {made}",
            flush=True,
        )
        size = runtime.store.query(
            "SELECT COALESCE(SUM(pg_total_relation_size(format('%%I.%%I', schemaname, tablename))), 0) AS n "
            "FROM pg_tables WHERE schemaname = %s AND tablename NOT LIKE 'sk\\_%%'",
            [schema_name],
        )[0]["n"]
        print(
            f"event store on disk (tables and indexes): {int(size) / 2**20:,.0f} MiB = {int(size) / head:,.0f} B/event"
        )
        rebuild = rebuild_all(runtime)
        print(
            f"rebuild of every read model: {rebuild:.1f} s = {head / rebuild:,.0f} events/s (goal < 300 s at 1,000,000)"
        )

        print(f"statistics of every table (ANALYZE, as autovacuum would): {analyse(runtime, schema_name):.1f} s")
        rng = random.Random(7)
        audit_latencies = []
        whole_log = []
        for _ in range(args.rounds):
            month = START + timedelta(days=rng.randrange(0, 330))
            filters = AuditFilter(
                service_id=rng.choice(service_ids),
                since=month.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
                until=(month + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
            )
            started = time.perf_counter()
            runtime.audit.page(filters, None, 100)
            audit_latencies.append(time.perf_counter() - started)
            # The same month over the whole log (no service): a month half-way through 1,000,000 events
            # took 240-320 ms while a window was a filtered scan of the log after it.
            started = time.perf_counter()
            runtime.audit.page(replace(filters, service_id=None), None, 100)
            whole_log.append(time.perf_counter() - started)
        print(f"audit query, one service over one month: {summary(audit_latencies)} (goal p99 < 50 ms)")
        print(f"audit query, the whole log over one month: {summary(whole_log)} (goal p99 < 50 ms)")
        history = runtime.audit.history(str(big))
        as_of = []
        for _ in range(args.rounds):
            when = rng.choice(history)["at"]
            started = time.perf_counter()
            version = runtime.audit.configuration_version_at(str(big), when)
            assert version is not None
            assert runtime.app.configuration(big, version=version).version == version
            as_of.append(time.perf_counter() - started)
        print(f"as_of read, {len(history):,}-version configuration: {summary(as_of)} (goal p50 < 10 ms)")
        # In process, the read behind each board: every live deployment (what GET /board returned
        # before it was paged, and what the console's cache still holds), against one page.
        whole = [measured(runtime.read_models.board) for _ in range(max(3, args.rounds // 20))]
        paged = [measured(lambda: runtime.read_models.board_page(None, 50)) for _ in range(args.rounds)]
        print(f"read of the whole board (every live deployment), in process: {summary(whole)}")
        print(
            f"read of one board page (50 services, 20 per stage), in process: {summary(paged)} = "
            f"{percentile(whole, 0.5) / percentile(paged, 0.5):.0f}x faster at p50"
        )
        runtime.close()

        env = {"STAGEKEEPER_SERVE_WORKERS": "false"}
        with served(url, Path(tmp) / "server.log", **env) as base:
            # The server opens its admin account at start-up (an event); without workers (timing), nothing
            # projects it, and the board as of an instant waits for the read models to reach the head.
            settled = Runtime(Settings(database_url=url))
            settled.projection_follower.catch_up()
            settled.close()
            with httpx.Client(base_url=base, auth=("admin", PASSWORD), timeout=120) as client:
                health = timed(client, "/healthz", args.rounds)
                board = timed(client, "/api/v1/board", args.rounds)
                middle = client.get("/api/v1/board", params={"limit": 200}).json()["next"]
                later = timed(client, f"/api/v1/board?limit=200&cursor={middle}", args.rounds) if middle else []
                one = timed(client, f"/api/v1/board?service={service_ids[len(service_ids) // 2]}", args.rounds)
                # The board as it was half-way through the history (the console's time slider): every service
                # read as it was then. No goal of its own; a few rounds (it took about a minute at 1,000,000
                # events while each service scanned every deployment's entry).
                halfway = (START + timedelta(days=182)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
                past = timed(client, f"/api/v1/board?as_of={halfway}", max(3, args.rounds // 40))
            port = urlparse(base).port
            assert port is not None
            rss = server_peak_rss_mib(port)
        print(f"baseline GET /healthz: {summary(health)}")
        print(
            f"GET /api/v1/board: {summary(board)} (goal p99 < 50 ms) = "
            f"{percentile(board, 0.99) / percentile(health, 0.99):.1f}x the baseline p99"
        )
        if later:
            print(f"GET /api/v1/board, second page of 200 services: {summary(later)}")
        print(f"GET /api/v1/board?service=<one>: {summary(one)}")
        print(f"GET /api/v1/board?as_of=<half-way> (every service as it was then): {summary(past)}")
        print(f"server peak RSS after start-up and the requests: {rss:,.0f} MiB (goal < 500 MiB)")


if __name__ == "__main__":
    main()
