"""CPU a command costs in the server process, without HTTP, on PostgreSQL (issue 15).

1. One thread: `update_service` in a loop (time.process_time per command, wall p50).
2. Eight threads, the workers running (projection follower, process manager...): commands/s, and the
   CPU per command of each thread group, read from /proc (Linux), so the followers' share shows.
CPU time is less distorted by a loaded machine than wall time; compare two checkouts by running this
from each, alternating. Usage: .venv/bin/python -m scripts.bench.command_cpu [--count 800] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid

from adapters.runtime import Runtime
from adapters.settings import Settings
from scripts.bench.common import percentile, schema

POOL = "/DC0/host/DC0_C0/Resources"


def _register(runtime: Runtime, prefix: str) -> uuid.UUID:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    stages = [{"name": "int", "resource_pool": f"{POOL}/{name}"}]
    return runtime.app.register_service(name, "", stages, actor="bench").value.id


def one_thread(url: str, count: int) -> None:
    runtime = Runtime(Settings(database_url=url))
    try:
        service_id = _register(runtime, "one")
        for i in range(30):  # warm: statements prepared, the service in the aggregate cache
            runtime.app.update_service(service_id, f"warm {i}", actor="bench")
        latencies = []
        cpu = time.process_time()
        for i in range(count):
            started = time.perf_counter()
            runtime.app.update_service(service_id, f"revision {i}", actor="bench")
            latencies.append(time.perf_counter() - started)
        cpu = time.process_time() - cpu
    finally:
        runtime.close()
    print(
        f"one thread: CPU {cpu / count * 1000:.3f} ms/command, p50 {percentile(latencies, 0.5) * 1000:.2f} ms "
        f"({count} commands; load average {os.getloadavg()[0]:.1f})"
    )


def _thread_cpu(native_id: int) -> float:
    try:
        with open(f"/proc/self/task/{native_id}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def eight_threads(url: str, seconds: float, clients: int = 8) -> None:
    runtime = Runtime(Settings(database_url=url))
    try:
        ids = [_register(runtime, f"c{k}") for k in range(clients)]
        runtime.start_workers()
        time.sleep(2)  # the followers have caught up with the registrations
        before = {t.native_id: _thread_cpu(t.native_id or 0) for t in threading.enumerate()}
        counts = [0] * clients
        stop = time.monotonic() + seconds

        def client(k: int) -> None:
            while time.monotonic() < stop:
                runtime.app.update_service(ids[k], f"revision {counts[k]}", actor="bench")
                counts[k] += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        started, cpu = time.monotonic(), time.process_time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
        time.sleep(1)  # the followers apply the last events
        cpu = time.process_time() - cpu
        total = sum(counts)
        groups: dict[str, float] = {}
        for thread in threading.enumerate():
            spent = _thread_cpu(thread.native_id or 0) - before.get(thread.native_id, 0.0)
            groups[thread.name] = groups.get(thread.name, 0.0) + spent
    finally:
        runtime.close()
    print(
        f"{clients} threads: {total / wall:.0f} commands/s, process CPU {cpu / total * 1000:.3f} ms/command "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    print(f"  the command threads: {(cpu - sum(groups.values())) / total * 1000:.3f} ms/command")
    for name, spent in sorted(groups.items(), key=lambda item: -item[1])[:4]:
        print(f"  {name}: {spent / total * 1000:.3f} ms/command")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=800)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with schema() as (_, url):
        one_thread(url, args.count)
    with schema() as (_, url):
        eight_threads(url, args.seconds)


if __name__ == "__main__":
    main()
