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
without it (one transaction per write, the library's way), in alternating order. The sequential
command is timed twice over HTTP with the lean client: against `stagekeeper serve` as it runs by
default (its background workers, projections and process manager, in the same process: each
command's event is projected there while the next request is served, one interpreter lock for both)
and against `serve` with STAGEKEEPER_SERVE_WORKERS=false beside a `stagekeeper worker` process (the
README's split deployment): the in-process command runs no workers, so the second is that
command's like, the first what one `serve` gives.

Clients. httpx (the figures of earlier runs, kept) costs ~0.3-0.6 ms of client CPU a request, and
8 httpx threads in this process take a core of a 2-core machine from the server. So the same
sequential command is also timed with a lean keep-alive client (http.client): that figure is the
goal's (the server's HTTP overhead). Throughput is also measured with a load generator that costs
little CPU: `wrk` (Debian package, scripts/apt-packages-dev.txt; one thread and one connection per
client, each on its own service) or, without it, one lean client process per client; against
`stagekeeper serve` (one process) and `serve --processes 2`. The generator first runs the same load
for `--warmup` seconds (default 1), not counted: a server's first requests pay one-time costs, the
check of the clients' password (scrypt, about 60 ms of CPU, once for each connection that arrives
at a process before the first check is cached: about 250 ms measured in a 2-process server, 3 % of
an 8 s run at 600 commands/s) and the preparation of statements on each pooled connection.
`--warmup 0` measures from the first request, as runs before stop 25 did.
`--floor` (diagnostic, no goal figures): the lean client's sequential p50 of the command next to
requests that do little (`GET /healthz`, `GET` of the service, a 404) on the same `serve`, and of
a bare ASGI app on uvicorn with the same loop and parser (the floor of uvicorn and this client on
this machine), each with the server process's CPU per request (/proc, every thread, less what
it spends per second with no request: its background workers), and its event-loop thread's CPU and
voluntary context switches per request (the loop's sleeps: waiting for the request, for the
hop's answer, for the interpreter lock, for a wake-up from a commit): figures a loaded machine
changes little, unlike the p50.
Usage: .venv/bin/python -m scripts.bench.commands [--seconds 10] [--clients 8] [--rounds 3] [--pool-check]
       [--base ../main-worktree] [--warmup 1] [--floor]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

from scripts.bench.common import (
    CONNINFO,
    PASSWORD,
    free_port,
    percentile,
    schema,
    served,
    serving,
    wait_for_port,
    worker_beside,
)

# Each service claims its own pool (a resource pool belongs to one service).
POOL = "/DC0/host/DC0_C0/Resources"
# Seconds of the load generator's load run before the measured run, not counted (--warmup).
WARMUP_SECONDS = 1.0


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


def register(url: str, count: int, prefix: str) -> list[str]:
    """`count` services, one for each client (so their commands do not conflict)."""
    ids = []
    with httpx.Client(base_url=url, auth=("admin", PASSWORD)) as client:
        for i in range(count):
            response = client.post(
                "/api/v1/services",
                json={
                    "name": f"{prefix}-{i}",
                    "stages": [{"name": "int", "resource_pool": f"{POOL}/{prefix}-{i}"}],
                },
            )
            response.raise_for_status()
            ids.append(response.json()["id"])
    return ids


def drive(url: str, clients: int, seconds: float, prefix: str = "bench") -> tuple[list[float], int, float]:
    """httpx clients, one thread each, in this process."""
    auth = ("admin", PASSWORD)
    ids = register(url, clients, prefix)
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


AUTHORIZATION = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()


def lean(url: str, service_id: str, seconds: float) -> tuple[list[float], int]:
    """One keep-alive http.client connection sending the command in a loop: (latencies, errors)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80)
    headers = {"Authorization": AUTHORIZATION, "Content-Type": "application/json"}
    path = f"/api/v1/services/{service_id}"
    latencies: list[float] = []
    errors = n = 0
    stop_at = time.monotonic() + seconds
    try:
        while time.monotonic() < stop_at:
            n += 1
            body = json.dumps({"description": f"revision {n}"})
            started = time.perf_counter()
            connection.request("PATCH", path, body, headers)
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            errors += response.status != 200
    finally:
        connection.close()
    return latencies, errors


def _lean_process(job: tuple[str, str, float]) -> tuple[list[float], int]:
    return lean(*job)


WRK_SCRIPT = """
local ids = {%(ids)s}
local created = 0
function setup(thread)
  created = created + 1
  thread:set("service", ids[created])
end
function init(args)
  n = 0
end
function request()
  n = n + 1
  return wrk.format("PATCH", "/api/v1/services/" .. service,
    {["Authorization"] = "%(authorization)s", ["Content-Type"] = "application/json"},
    '{"description": "revision ' .. n .. '"}')
end
function done(summary, latency, requests)
  io.write(string.format("WRK requests=%%d duration_us=%%d status_errors=%%d socket_errors=%%d p50_us=%%d\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50)))
end
"""


def generate_load(url: str, ids: list[str], seconds: float, tmp: Path) -> tuple[int, float, float, int, str]:
    """(commands, seconds, p50 seconds, errors, generator) of one connection per service at once, from a
    load generator that leaves the cores to the server: wrk, else one lean client process each."""
    wrk = shutil.which("wrk")
    if wrk is not None:
        script = tmp / "commands.lua"
        script.write_text(WRK_SCRIPT % {"ids": ", ".join(f'"{i}"' for i in ids), "authorization": AUTHORIZATION})
        n = str(len(ids))
        duration = f"{max(1, round(seconds))}s"
        ran = subprocess.run(
            [wrk, "-t", n, "-c", n, "-d", duration, "-s", str(script), url], capture_output=True, text=True, check=True
        )
        found = re.search(
            r"WRK requests=(\d+) duration_us=(\d+) status_errors=(\d+) socket_errors=(\d+) p50_us=(\d+)", ran.stdout
        )
        if found is None:
            raise RuntimeError(f"wrk said: {ran.stdout} {ran.stderr}")
        requests, duration_us, status_errors, socket_errors, p50_us = (int(g) for g in found.groups())
        return requests, duration_us / 1e6, p50_us / 1e6, status_errors + socket_errors, "wrk"
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(len(ids)) as pool:
        results = pool.map(_lean_process, [(url, i, seconds) for i in ids])
    elapsed = time.monotonic() - started
    latencies = [x for result in results for x in result[0]]
    return len(latencies), elapsed, percentile(latencies, 0.5), sum(r[1] for r in results), "lean client processes"


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


def recorded(api: str, ids: list[str]) -> int:
    """Commands the services have recorded so far (each command one version)."""
    with httpx.Client(base_url=api, auth=("admin", PASSWORD)) as client:
        return sum(client.get(f"/api/v1/services/{i}").json()["version"] - 1 for i in ids)


def lean_throughput(
    clients: int, seconds: float, processes: int, tmp: Path, warmup: float = WARMUP_SECONDS
) -> tuple[float, float, str]:
    """Commands/s and p50 of the lean load generator against `serve --processes N` (group commit),
    measured after `warmup` seconds of the same load (not counted)."""
    with (
        schema() as (_, url),
        serving(url, tmp / f"server-lean-{processes}-{uuid.uuid4().hex[:6]}.log", processes=processes) as api,
    ):
        ids = register(api, clients, "lean")
        if warmup > 0:
            generate_load(api, ids, warmup, tmp)
            # The warm-up's connections seen closed before the measured ones open: `serve
            # --processes` hands a new connection to the process holding the fewest.
            time.sleep(0.5)
        before = recorded(api, ids)
        count, elapsed, p50, errors, generator = generate_load(api, ids, seconds, tmp)
        # The generator's count, checked against what the services recorded (each command one version).
        applied = recorded(api, ids) - before
    if errors or applied < count - errors:
        print(f"  {generator}, {processes} process(es): {errors} errors, {applied} commands recorded of {count} sent")
    return count / elapsed, p50, generator


def lean_get(url: str, path: str, seconds: float) -> tuple[list[float], int]:
    """A keep-alive http.client connection sending GET `path` in a loop: (latencies, last status)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80)
    headers = {"Authorization": AUTHORIZATION}
    latencies: list[float] = []
    status = 0
    stop_at = time.monotonic() + seconds
    try:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            status = response.status
    finally:
        connection.close()
    return latencies, status


def process_cpu(pid: int) -> float:
    """CPU seconds of every thread of process `pid` so far."""
    return stat_cpu(Path(f"/proc/{pid}/stat").read_text(), os.sysconf("SC_CLK_TCK"))


def loop_thread(pid: int) -> tuple[float, int]:
    """CPU seconds and voluntary context switches so far of the main thread of process `pid` (a
    server's event loop: its thread id is the pid)."""
    task = Path(f"/proc/{pid}/task/{pid}")
    return stat_cpu((task / "stat").read_text(), os.sysconf("SC_CLK_TCK")), voluntary_switches(
        (task / "status").read_text()
    )


def stat_cpu(stat: str, ticks: int) -> float:
    """User + system CPU seconds of a /proc `stat` line (its 14th and 15th fields, counted after
    the command name, which may hold spaces and parentheses)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def voluntary_switches(status: str) -> int:
    """`voluntary_ctxt_switches` of a /proc `status` file: how many times the thread slept."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == "voluntary_ctxt_switches":
            return int(value)
    raise ValueError("no voluntary_ctxt_switches in this status")


def listener(port: int) -> int:
    """The pid of the process listening on 127.0.0.1:`port` (the server, not its supervisor)."""
    inode = ""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cells = line.split()
        if cells[1].endswith(f":{port:04X}") and cells[3] == "0A":
            inode = cells[9]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                return int(pid)
        except OSError:
            continue
    raise RuntimeError(f"nothing listens on {port}")


BARE_APP = """
import uvicorn
from api.cli import _event_loop, _http_parser

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})

uvicorn.run(app, host="127.0.0.1", port=%d, log_config=None, access_log=False, http=_http_parser(), loop=_event_loop())
"""


def floor(rounds: int, seconds: float) -> None:
    """Sequential p50 (lean client) and server CPU per request of the command and of cheap requests."""
    figures: dict[str, list[tuple[float, float, float, float]]] = {}

    # Per second with no request: the process's CPU, its loop thread's CPU and context switches.
    idle: dict[int, tuple[float, float, float]] = {}

    def measure(label: str, url: str, pid: int, run: Callable[[], tuple[list[float], int]]) -> None:
        cpu, loop, started = process_cpu(pid), loop_thread(pid), time.monotonic()
        latencies, status = run()
        cpu, elapsed = process_cpu(pid) - cpu, time.monotonic() - started
        loop_cpu, switches = (after - before for after, before in zip(loop_thread(pid), loop, strict=True))
        # Less what the process spends with no request at all (its background workers), per second.
        quiet = idle.get(pid, (0.0, 0.0, 0.0))
        busy = max(0.0, cpu - quiet[0] * elapsed)
        loop_busy = max(0.0, loop_cpu - quiet[1] * elapsed)
        wakes = max(0.0, switches - quiet[2] * elapsed)
        n = len(latencies)
        figures.setdefault(label, []).append((percentile(latencies, 0.5), busy / n, loop_busy / n, wakes / n))
        if status != 200 and not label.startswith("GET 404"):
            print(f"  {label}: status {status}")

    port = free_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        schema() as (_, url),
        served(url, Path(tmp) / "server.log") as api,
        subprocess.Popen([sys.executable, "-c", BARE_APP % port], stderr=subprocess.DEVNULL) as bare_process,
    ):
        try:
            bare = f"http://127.0.0.1:{port}"
            wait_for_port(port, bare_process)
            server = listener(int(urlsplit(api).port or 0))
            bare_pid = listener(port)
            service = register(api, 1, "floor")[0]
            runs: list[tuple[str, str, int, Callable[[], tuple[list[float], int]]]] = [
                ("PATCH command", api, server, lambda: _status(lean(api, service, seconds))),
                ("GET /healthz", api, server, lambda: lean_get(api, "/healthz", seconds)),
                ("GET the service", api, server, lambda: lean_get(api, f"/api/v1/services/{service}", seconds)),
                ("GET 404 (unmatched)", api, server, lambda: lean_get(api, "/api/v1/nothing-here", seconds)),
                ("bare ASGI app on uvicorn", bare, bare_pid, lambda: lean_get(bare, "/", seconds)),
            ]
            for _, _, _, run in runs:
                run()  # warm-up (FastAPI builds its included routes' state on first use)
            for pid in (server, bare_pid):
                cpu, (loop_cpu, switches) = process_cpu(pid), loop_thread(pid)
                time.sleep(seconds)
                now_cpu, (now_loop, now_switches) = process_cpu(pid), loop_thread(pid)
                idle[pid] = (
                    (now_cpu - cpu) / seconds,
                    (now_loop - loop_cpu) / seconds,
                    (now_switches - switches) / seconds,
                )
            print(
                f"server with no request, per second: CPU {idle[server][0] * 1000:.1f} ms, loop thread"
                f" {idle[server][1] * 1000:.1f} ms and {idle[server][2]:.1f} sleeps (subtracted below)"
            )
            for r in range(rounds):
                for label, target, pid, run in runs if r % 2 == 0 else list(reversed(runs)):
                    measure(label, target, pid, run)
        finally:
            bare_process.terminate()
    print(
        "sequential p50, lean keep-alive client; server CPU per request (all threads, less idle), its"
        f" loop thread's CPU and voluntary context switches per request (less idle); {rounds} rounds:"
    )
    for label, values in figures.items():
        p50s = [v[0] for v in values]
        cpus = [v[1] for v in values]
        loops = [v[2] for v in values]
        wakes = [v[3] for v in values]
        print(
            f"  {label:26} p50 {spread(p50s, 1000, ' ms')}; server CPU {spread(cpus, 1000, ' ms')};"
            f" loop thread {spread(loops, 1000, ' ms')}, {spread(wakes)} sleeps"
        )


def _status(result: tuple[list[float], int]) -> tuple[list[float], int]:
    """`lean`'s (latencies, errors) as (latencies, status): 200 when every command succeeded."""
    latencies, errors = result
    return latencies, 200 if not errors else 500


def compare_base(base: str, clients: int, rounds: int, seconds: float, warmup: float = WARMUP_SECONDS) -> None:
    """This checkout against another (`--base`, e.g. a worktree of main), each served by one
    `stagekeeper serve` on its own schema, both running: per round, alternating, the sequential
    command with the lean client and the throughput of the load generator."""
    sequential: dict[str, list[float]] = {"base": [], "this": []}
    rates: dict[str, list[float]] = {"base": [], "this": []}
    generator = ""
    with (
        tempfile.TemporaryDirectory() as tmp,
        schema() as (_, base_url),
        schema() as (_, this_url),
        served(base_url, Path(tmp) / "base.log", cwd=base) as base_api,
        served(this_url, Path(tmp) / "this.log") as this_api,
    ):
        apis = {"base": base_api, "this": this_api}
        ids = {label: register(api, clients, label) for label, api in apis.items()}
        if warmup > 0:
            for label, api in apis.items():
                generate_load(api, ids[label], warmup, Path(tmp))
            time.sleep(0.5)
        for r in range(rounds):
            for label in ("base", "this") if r % 2 == 0 else ("this", "base"):
                latencies, errors = lean(apis[label], ids[label][0], seconds / 2)
                sequential[label].append(percentile(latencies, 0.5))
                count, elapsed, _, errors_under_load, generator = generate_load(
                    apis[label], ids[label], seconds, Path(tmp)
                )
                rates[label].append(count / elapsed)
                if errors or errors_under_load:
                    print(f"  {label}: {errors} + {errors_under_load} errors")
            print(
                f"round {r + 1}: sequential p50 (lean client) base {sequential['base'][-1] * 1000:.2f} ms, "
                f"this {sequential['this'][-1] * 1000:.2f} ms; {clients} clients ({generator}) "
                f"base {rates['base'][-1]:.0f}/s, this {rates['this'][-1]:.0f}/s",
                flush=True,
            )
    for label in ("base", "this"):
        print(
            f"{label}: sequential p50 {spread(sequential[label], 1000, ' ms')}; "
            f"{clients} clients {spread(rates[label], unit='/s')} (min / median / max over {rounds} rounds)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pool-check", action="store_true", help="only compare in-process commands: ping on every checkout vs quiet"
    )
    parser.add_argument(
        "--base", help="only compare this checkout with the checkout BASE (e.g. a worktree of main), both served"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=WARMUP_SECONDS,
        help="seconds of load generator load before its measured run, not counted (0: none, as before)",
    )
    parser.add_argument(
        "--floor", action="store_true", help="only the command next to cheap requests and a bare uvicorn app"
    )
    args = parser.parse_args()
    if args.floor:
        floor(args.rounds, args.seconds / 2)
        return
    if args.base:
        compare_base(args.base, args.clients, args.rounds, args.seconds, args.warmup)
        return
    if args.pool_check:
        compare_pool_check()
        return
    base_p50: list[float] = []
    direct_p50: list[float] = []
    http_p50: list[float] = []
    lean_p50: list[float] = []
    apart_p50: list[float] = []
    rates: dict[bool, list[float]] = {True: [], False: []}
    concurrent_p50: dict[bool, list[float]] = {True: [], False: []}
    generated: dict[int, list[float]] = {1: [], 2: []}
    generated_p50: dict[int, list[float]] = {1: [], 2: []}
    generator = ""
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            # Every figure of a round is measured next to the others, in turn, so the machine's load
            # weighs on all of them; the order of the two clients and of the throughput runs alternates.
            with schema() as (name, url):
                base_p50.append(percentile(baseline(name, 1000), 0.5))
                direct_p50.append(percentile(in_process(url, 500), 0.5))
                with served(url, Path(tmp) / f"server-seq-{r}.log") as api:
                    # Sequential: latency with no queueing, comparable to the in-process command.
                    lean_id = register(api, 1, f"lean-{r}")[0]
                    for client in ("httpx", "lean") if r % 2 == 0 else ("lean", "httpx"):
                        if client == "httpx":
                            sequential, seq_errors, _ = drive(api, 1, args.seconds / 2, prefix=f"seq-{r}")
                            http_p50.append(percentile(sequential, 0.5))
                        else:
                            lean_latencies, lean_errors = lean(api, lean_id, args.seconds / 2)
                            lean_p50.append(percentile(lean_latencies, 0.5))
                # The same lean client against an API process whose background workers run in a
                # `stagekeeper worker` process beside it (STAGEKEEPER_SERVE_WORKERS=false), as the
                # in-process command runs none: the workers' threads no longer wait for the same
                # interpreter lock as the request.
                with (
                    served(url, Path(tmp) / f"server-apart-{r}.log", STAGEKEEPER_SERVE_WORKERS="false") as api,
                    worker_beside(url, Path(tmp) / f"worker-{r}.log"),
                ):
                    apart_id = register(api, 1, f"apart-{r}")[0]
                    apart_latencies, apart_errors = lean(api, apart_id, args.seconds / 2)
                    apart_p50.append(percentile(apart_latencies, 0.5))
            for group_commit in (True, False) if r % 2 == 0 else (False, True):
                label = f"{'gc' if group_commit else 'nogc'}-{r}"
                rate, latencies = throughput(args.clients, args.seconds, group_commit, Path(tmp), label)
                rates[group_commit].append(rate)
                concurrent_p50[group_commit].append(percentile(latencies, 0.5))
            for processes in (1, 2) if r % 2 == 0 else (2, 1):
                rate, p50, generator = lean_throughput(args.clients, args.seconds, processes, Path(tmp), args.warmup)
                generated[processes].append(rate)
                generated_p50[processes].append(p50)
            print(
                f"round {r + 1}: baseline p50 {base_p50[-1] * 1000:.2f} ms, in process {direct_p50[-1] * 1000:.2f} ms, "
                f"HTTP {http_p50[-1] * 1000:.2f} ms httpx ({seq_errors} errors), {lean_p50[-1] * 1000:.2f} ms lean "
                f"({lean_errors} errors), {apart_p50[-1] * 1000:.2f} ms lean with the workers in a worker process "
                f"({apart_errors} errors); {args.clients} httpx clients {rates[True][-1]:.0f}/s group commit, "
                f"{rates[False][-1]:.0f}/s without; {generator}: {generated[1][-1]:.0f}/s one process, "
                f"{generated[2][-1]:.0f}/s two",
                flush=True,
            )
    print(f"min / median / max over {args.rounds} rounds:")
    print(f"baseline  psycopg INSERT + COMMIT p50: {spread(base_p50, 1000, ' ms')}")
    print(f"app       in-process command p50: {spread(direct_p50, 1000, ' ms')}")
    print(f"api       sequential command p50 (httpx client): {spread(http_p50, 1000, ' ms')}")
    print(f"api       sequential command p50 (lean keep-alive client): {spread(lean_p50, 1000, ' ms')}")
    print(
        "api       sequential command p50 (lean client, serve without workers + stagekeeper worker): "
        f"{spread(apart_p50, 1000, ' ms')}"
    )
    for label, figures in (
        ("httpx client", http_p50),
        ("lean client: the goal figure", lean_p50),
        ("lean client, workers in a worker process", apart_p50),
    ):
        added = [h - d for h, d in zip(figures, direct_p50, strict=True)]
        ratio = [h / d for h, d in zip(figures, direct_p50, strict=True)]
        print(
            f"HTTP vs in process ({label}): {spread(ratio, unit='x')} (goal <= 2x), "
            f"adds {spread(added, 1000, ' ms')} (goal < 1)"
        )
    over_base = [h / b for h, b in zip(http_p50, base_p50, strict=True)]
    print(f"ratio HTTP p50 (httpx) / baseline p50: {spread(over_base, unit='x')}")
    for group_commit, label in ((True, "group commit"), (False, "a transaction per write")):
        print(
            f"throughput, {args.clients} httpx client threads in the bench process, {label}: "
            f"{spread(rates[group_commit], unit='/s')} (p50 {spread(concurrent_p50[group_commit], 1000, ' ms')})"
        )
    gain = [on / off for on, off in zip(rates[True], rates[False], strict=True)]
    print(f"group commit / a transaction per write: {spread(gain, unit='x')}")
    for processes in (1, 2):
        print(
            f"throughput, {args.clients} clients from {generator}, group commit, serve --processes {processes} "
            f"(after {args.warmup:g} s of warm-up): "
            f"{spread(generated[processes], unit='/s')} (p50 {spread(generated_p50[processes], 1000, ' ms')}; "
            f"goal >= 600/s with 8)"
        )


if __name__ == "__main__":
    main()
