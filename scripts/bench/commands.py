"""Command throughput and latency through the HTTP API on PostgreSQL, next to a baseline.

Baseline (same run, same server): a plain psycopg transaction inserting one row and committing.
Workload: PATCH /api/v1/services/{id} (description change: one event each) from several client
threads, each on its own service so writes do not conflict, authenticated with HTTP Basic
(verified credentials are cached, so scrypt runs once).

Goals (issue 2): p50 command latency within 3x the baseline p50; >= 150 commands/s.
Goals (issue 15): HTTP adds < 1 ms to the in-process command and p50 HTTP <= 2x in-process;
>= 600 commands/s with 8 clients.
Each round measures, in turn, the baseline, the in-process command, the same command over HTTP
(one client), and the throughput of the clients with group commit (adapters/eventstore.py) and
without it (one transaction per write, the library's way), in alternating order.
Usage: .venv/bin/python -m scripts.bench.commands [--seconds 10] [--clients 8] [--rounds 3] [--pool-check]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from scripts.bench.common import CONNINFO, PASSWORD, percentile, schema, served

# Each service claims its own pool (a resource pool belongs to one service).
POOL = "/DC0/host/DC0_C0/Resources"


def baseline(schema_name: str, count: int) -> list[float]:
    latencies: list[float] = []
    with psycopg.connect(CONNINFO) as conn:
        conn.execute(f"CREATE TABLE {schema_name}.baseline (id BIGSERIAL PRIMARY KEY, data TEXT NOT NULL)")
        conn.commit()
        for i in range(count):
            started = time.perf_counter()
            conn.execute(f"INSERT INTO {schema_name}.baseline (data) VALUES (%s)", (f"row {i}" * 8,))  # noqa: S608
            conn.commit()
            latencies.append(time.perf_counter() - started)
    return latencies


def in_process(url: str, count: int, ping_always: bool = False) -> list[float]:
    """The same command through the application object, without HTTP (where the time goes).

    `ping_always`: the event store's pool pings every connection it hands out (the check used
    before adapters/pgcheck.py), for a comparison in the same run (--pool-check).
    """
    from psycopg_pool import ConnectionPool

    from adapters.runtime import Runtime
    from adapters.settings import Settings

    runtime = Runtime(Settings(database_url=url))
    try:
        if ping_always:
            runtime.app.recorder.wrapped.datastore.pool._check = ConnectionPool.check_connection  # type: ignore[attr-defined]
        name = f"in-process-{uuid.uuid4().hex[:8]}"
        service = runtime.app.register_service(
            name, "", [{"name": "int", "resource_pool": f"{POOL}/{name}"}], actor="bench"
        ).value
        latencies = []
        for i in range(count):
            started = time.perf_counter()
            runtime.app.update_service(service.id, f"revision {i}", actor="bench")
            latencies.append(time.perf_counter() - started)
        return latencies
    finally:
        runtime.close()


def drive(url: str, clients: int, seconds: float, prefix: str = "bench") -> tuple[list[float], int, float]:
    auth = ("admin", PASSWORD)
    with httpx.Client(base_url=url, auth=auth) as client:
        ids = []
        for i in range(clients):
            response = client.post(
                "/api/v1/services",
                json={
                    "name": f"{prefix}-{i}",
                    "stages": [{"name": "int", "resource_pool": f"{POOL}/{prefix}-{i}"}],
                },
            )
            response.raise_for_status()
            ids.append(response.json()["id"])
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(service_id: str) -> None:
        local: list[float] = []
        n = 0
        with httpx.Client(base_url=url, auth=auth) as client:
            while time.monotonic() < stop_at:
                n += 1
                started = time.perf_counter()
                response = client.patch(f"/api/v1/services/{service_id}", json={"description": f"revision {n}"})
                local.append(time.perf_counter() - started)
                if response.status_code != 200:
                    with lock:
                        errors[0] += 1
        with lock:
            latencies.extend(local)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(sid,)) for sid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0], time.monotonic() - started


def compare_pool_check(rounds: int = 4, count: int = 150) -> None:
    """In-process p50 with the pool pinging every connection vs only non-quiet ones, alternating."""
    figures: dict[bool, list[float]] = {True: [], False: []}
    with schema() as (_, url):
        for r in range(rounds):
            for ping in (True, False) if r % 2 == 0 else (False, True):
                figures[ping].append(percentile(in_process(url, count, ping_always=ping), 0.5))
    for ping, label in ((True, "ping every checkout"), (False, "ping when not quiet")):
        ms = sorted(x * 1000 for x in figures[ping])
        print(f"in-process p50, {label}: min/median/max {ms[0]:.2f} / {statistics.median(ms):.2f} / {ms[-1]:.2f} ms")
    ratios = [q / p for q, p in zip(figures[False], figures[True], strict=True)]
    print("ratio quiet/ping per round:", " ".join(f"{x:.2f}" for x in ratios))


def spread(values: list[float], scale: float = 1.0, unit: str = "") -> str:
    """min / median / max of per-round figures."""
    ordered = sorted(v * scale for v in values)
    return f"{ordered[0]:.2f} / {statistics.median(ordered):.2f} / {ordered[-1]:.2f}{unit}"


def throughput(clients: int, seconds: float, group_commit: bool, tmp: Path, label: str) -> tuple[float, list[float]]:
    """Commands/s of `clients` clients against a fresh server and schema (group commit on or off)."""
    env = {"STAGEKEEPER_GROUP_COMMIT": "true" if group_commit else "false"}
    with schema() as (_, url), served(url, tmp / f"server-{label}.log", **env) as api:
        latencies, errors, elapsed = drive(api, clients, seconds)
    if errors:
        print(f"  {label}: {errors} errors")
    return len(latencies) / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pool-check", action="store_true", help="only compare in-process commands: ping on every checkout vs quiet"
    )
    args = parser.parse_args()
    if args.pool_check:
        compare_pool_check()
        return
    base_p50: list[float] = []
    direct_p50: list[float] = []
    http_p50: list[float] = []
    rates: dict[bool, list[float]] = {True: [], False: []}
    concurrent_p50: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            # Every figure of a round is measured next to the others, in turn, so the machine's load
            # weighs on all of them; the order of the two throughput runs alternates.
            with schema() as (name, url):
                base_p50.append(percentile(baseline(name, 1000), 0.5))
                direct_p50.append(percentile(in_process(url, 500), 0.5))
                with served(url, Path(tmp) / f"server-seq-{r}.log") as api:
                    # Sequential: latency with no queueing, comparable to the in-process command.
                    sequential, seq_errors, _ = drive(api, 1, args.seconds / 2)
                http_p50.append(percentile(sequential, 0.5))
            for group_commit in (True, False) if r % 2 == 0 else (False, True):
                label = f"{'gc' if group_commit else 'nogc'}-{r}"
                rate, latencies = throughput(args.clients, args.seconds, group_commit, Path(tmp), label)
                rates[group_commit].append(rate)
                concurrent_p50[group_commit].append(percentile(latencies, 0.5))
            print(
                f"round {r + 1}: baseline p50 {base_p50[-1] * 1000:.2f} ms, in process {direct_p50[-1] * 1000:.2f} ms, "
                f"HTTP {http_p50[-1] * 1000:.2f} ms ({seq_errors} errors); {args.clients} clients "
                f"{rates[True][-1]:.0f}/s group commit, {rates[False][-1]:.0f}/s without",
                flush=True,
            )
    added = [h - d for h, d in zip(http_p50, direct_p50, strict=True)]
    ratio = [h / d for h, d in zip(http_p50, direct_p50, strict=True)]
    gain = [on / off for on, off in zip(rates[True], rates[False], strict=True)]
    print(f"min / median / max over {args.rounds} rounds:")
    print(f"baseline  psycopg INSERT + COMMIT p50: {spread(base_p50, 1000, ' ms')}")
    print(f"app       in-process command p50: {spread(direct_p50, 1000, ' ms')}")
    print(f"api       sequential command p50: {spread(http_p50, 1000, ' ms')}")
    print(f"HTTP vs in process: {spread(ratio, unit='x')} (goal <= 2x), adds {spread(added, 1000, ' ms')} (goal < 1)")
    over_base = [h / b for h, b in zip(http_p50, base_p50, strict=True)]
    print(f"ratio HTTP p50 / baseline p50: {spread(over_base, unit='x')}")
    for group_commit, label in ((True, "group commit"), (False, "a transaction per write")):
        print(
            f"throughput, {args.clients} clients, {label}: {spread(rates[group_commit], unit='/s')} "
            f"(p50 {spread(concurrent_p50[group_commit], 1000, ' ms')}; goal >= 600/s with 8)"
        )
    print(f"group commit / a transaction per write: {spread(gain, unit='x')}")


if __name__ == "__main__":
    main()
