"""Command throughput and latency through the HTTP API on PostgreSQL, next to a baseline.

Baseline (same run, same server): a plain psycopg transaction inserting one row and committing.
Workload: PATCH /api/v1/services/{id} (description change: one event each) from several client
threads, each on its own service so writes do not conflict, authenticated with HTTP Basic
(verified credentials are cached, so scrypt runs once).

Goals (issue 2): p50 command latency within 3x the baseline p50; >= 150 commands/s.
Goals (issue 15): HTTP adds < 1 ms to the in-process command and p50 HTTP <= 2x in-process;
>= 600 commands/s with 8 clients.
Usage: .venv/bin/python -m scripts.bench.commands [--seconds 10] [--clients 8] [--pool-check]
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

from scripts.bench.common import CONNINFO, PASSWORD, percentile, schema, served, summary

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


def drive(url: str, clients: int, seconds: float) -> tuple[list[float], int, float]:
    auth = ("admin", PASSWORD)
    with httpx.Client(base_url=url, auth=auth) as client:
        ids = []
        for i in range(clients):
            response = client.post(
                "/api/v1/services",
                json={
                    "name": f"bench-{i}",
                    "stages": [{"name": "int", "resource_pool": f"{POOL}/bench-{i}"}],
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--pool-check", action="store_true", help="only compare in-process commands: ping on every checkout vs quiet"
    )
    args = parser.parse_args()
    if args.pool_check:
        compare_pool_check()
        return
    with schema() as (name, url), tempfile.TemporaryDirectory() as tmp:
        base = baseline(name, 2000)
        direct = in_process(url, 1000)
        with served(url, Path(tmp) / "server.log") as api:
            # Sequential pass: latency with no queueing, comparable to the baseline.
            sequential, seq_errors, _ = drive(api, 1, args.seconds / 2)
        with schema() as (_, url2), served(url2, Path(tmp) / "server2.log") as api2:
            concurrent, errors, elapsed = drive(api2, args.clients, args.seconds)
    base_p50 = percentile(base, 0.5)
    seq_p50 = percentile(sequential, 0.5)
    rate = len(concurrent) / elapsed
    print("baseline  psycopg INSERT + COMMIT:", summary(base))
    print("app       in-process command (no HTTP):", summary(direct))
    print(f"api       sequential commands ({len(sequential)}, {seq_errors} errors):", summary(sequential))
    print(
        f"api       {args.clients} clients ({len(concurrent)} commands, {errors} errors):",
        summary(concurrent),
    )
    direct_p50 = percentile(direct, 0.5)
    print(f"throughput: {rate:.0f} commands/s with {args.clients} clients (goal >= 600 with 8)")
    print(
        f"HTTP vs in process: p50 {seq_p50 * 1000:.2f} ms vs {direct_p50 * 1000:.2f} ms = "
        f"{seq_p50 / direct_p50:.2f}x, adds {(seq_p50 - direct_p50) * 1000:.2f} ms (goal <= 2x, < 1 ms)"
    )
    print(
        f"ratio p50 command / p50 baseline: {seq_p50 / base_p50:.2f}x over HTTP (goal <= 3x), "
        f"{direct_p50 / base_p50:.2f}x in process"
    )


if __name__ == "__main__":
    main()
