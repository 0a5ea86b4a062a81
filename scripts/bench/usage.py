"""Resource usage: the collector's vCenter cost per cycle, and the usage query over 30 days.

Goals (issue 13, Measure): sampling 1,000 VMs costs < 1 s of vCenter calls per cycle (one
property-collector retrieval, not a call per VM); the usage of one service over 30 days answers
with p99 < 50 ms. Each figure is printed with a ratio against a baseline measured in the same run:
- collector: one `sample_usage()` against reading the same VMs one call each (what the collector
  avoids), on the simulated driver and, unless --no-vcsim, on vcsim holding ~1,000 VMs (`-vm`);
- query: `GET /services/{id}/usage` over 30 days (document built in-process, PostgreSQL read
  models) against the services list query of the same store.
Usage: .venv/bin/python -m scripts.bench.usage [--vms 1000] [--cycles 5] [--queries 200] [--no-vcsim]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.pyvmomi import inventory
from adapters.vcenter.pyvmomi.usage import VM_USAGE
from adapters.vcenter.simulated import SimulatedVCenter
from api.usage import service_usage, window
from domain.ports import CloneSpec
from scripts.bench.common import percentile, schema
from tests.support import FixedClock, machine, stages

ROOT = "/DC0/host/DC0_C0/Resources"


def timed(function: object, rounds: int) -> list[float]:
    assert callable(function)
    spent = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        spent.append(time.perf_counter() - started)
    return spent


def simulated_collector(vms: int, cycles: int) -> None:
    driver = SimulatedVCenter()
    deployments = [uuid4() for _ in range(max(1, vms // 4))]
    made = []
    for i in range(vms):
        spec = CloneSpec(
            f"sk-b-{i}", "tpl-ubuntu-2404", ROOT, True, 2, 2048, deployments[i % len(deployments)], f"m{i}"
        )
        made.append(driver.clone(spec).vm_id)
    sample = timed(driver.sample_usage, cycles)
    per_vm = timed(lambda: [driver.power_state(vm) for vm in made], cycles)
    found = len(driver.sample_usage().vms)
    print(
        f"collector, simulated driver, {found} VMs: one sample {statistics.median(sample) * 1000:.1f} ms; "
        f"a call per VM (in memory: no vCenter cost to save) {statistics.median(per_vm) * 1000:.1f} ms; "
        f"ratio {statistics.median(sample) / statistics.median(per_vm):.2f}"
    )


def vcsim_collector(vms: int, cycles: int) -> None:
    from scripts.vcsim_harness import start

    per_pool = -(-vms // 3)  # vcsim's default inventory puts `-vm` VMs in each of its three places
    with tempfile.TemporaryDirectory() as folder:
        sim = start(Path(folder) / "vcsim.log", "-pg", "3", "-vm", str(per_pool))
        try:
            driver = sim.driver(task_timeout=60)
            content = driver.session.content
            refs = [vm for vm, props in inventory.retrieve(content, type_vm(), ["name"])]
            sample = timed(driver.sample_usage, cycles)
            calls = driver.sample_usage().calls
            subset = refs[: min(len(refs), 200)]
            per_vm = timed(lambda: [inventory.properties_of(content, vm, VM_USAGE) for vm in subset], 1)
            per_vm_total = per_vm[0] * len(refs) / len(subset)
            print(
                f"collector, pyvmomi on vcsim, {len(refs)} VMs: one sample {statistics.median(sample) * 1000:.0f} ms "
                f"in {calls} vCenter calls (goal < 1000 ms); a call per VM {per_vm_total * 1000:.0f} ms "
                f"(measured on {len(subset)}, scaled); ratio {statistics.median(sample) / per_vm_total:.3f}"
            )
            driver.close()
        finally:
            sim.stop()


def type_vm() -> type:
    from pyVmomi import vim

    return vim.VirtualMachine  # type: ignore[no-any-return]


def query(deployments: int, queries: int) -> None:
    with schema() as (_, url):
        settings = Settings(database_url=url, admin_password="bench-password", poll_seconds=0.05)
        clock = FixedClock(datetime.now(UTC) - timedelta(days=30))
        runtime = Runtime(settings, vcenter=SimulatedVCenter(), clock=clock)
        try:
            app = runtime.app
            app.import_templates(None, True, actor="bench")
            service = app.register_service("payroll", "", stages("int", "test", "prod"), actor="bench").value
            configuration = app.create_configuration(
                service.id, "p", "", [{"name": "front"}], [machine("web1"), machine("db1")], actor="bench"
            ).value
            for _ in range(deployments):
                app.deploy(configuration.id, "int", actor="bench")
            runtime.catch_up()
            # 30 days of samples, one every 30 minutes, through the collector itself.
            end = datetime.now(UTC)
            while clock.current < end:
                runtime.usage.collector.collect_once()
                clock.advance(minutes=30)
            span = window(runtime, (end - timedelta(days=30)).isoformat(), end.isoformat(), None)
            found = app.service(service.id)
            usage = timed(lambda: service_usage(runtime, found, None, span, None), queries)
            baseline = timed(runtime.read_models.services, queries)
            p99, base = percentile(usage, 0.99), percentile(baseline, 0.99)
            print(
                f"usage of one service over 30 days ({len(span.points())} points, {deployments} deployments, "
                f"PostgreSQL): p99 {p99 * 1000:.1f} ms (goal < 50 ms), "
                f"median {statistics.median(usage) * 1000:.1f} ms; "
                f"services list p99 {base * 1000:.1f} ms; ratio {p99 / base:.1f}"
            )
        finally:
            runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--deployments", type=int, default=40)
    parser.add_argument("--no-vcsim", action="store_true")
    args = parser.parse_args()
    # How busy this machine is: a shared 2-core machine runs pure Python several times slower than an
    # idle one (an idle one does this in ~40 ms); read the absolute figures below with that in mind.
    started = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i
    print(f"machine: 1,000,000 Python additions in {(time.perf_counter() - started) * 1000:.0f} ms")
    simulated_collector(args.vms, args.cycles)
    if not args.no_vcsim:
        vcsim_collector(args.vms, args.cycles)
    query(args.deployments, args.queries)


if __name__ == "__main__":
    main()
