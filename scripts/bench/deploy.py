"""Deploying 20 machines against vcsim: Stagekeeper next to a plain parallel pyvmomi script.

Both do the same vCenter work per machine with the same parallelism (8): clone from a
template into the stage pool (on a host and datastore named in the clone spec), set CPU/memory,
attach the NIC with a manual MAC, apply guest customisation with a static IP, power on.
Stagekeeper also records every step as events in PostgreSQL, claims IPs and MACs, tags VMs, and
reads each clone's host back (moving a VM that landed elsewhere: vcsim 0.24.2 ignores a clone's
host, the harness puts clones on it as vCenter does, scripts/vcsim/clonehost.go). vcsim adds a fixed delay to
clones and power-ons so vCenter time dominates, as on a real vCenter. Prints both wall times and their ratio.
Runs alternate (plain, Stagekeeper, plain, ...) so both see the same machine load; each pair gives a
ratio, and min/median/max of the ratios are printed. Stagekeeper's time runs until its process
manager has nothing left to do (verification after `Deployed` included); the time until `Deployed`
was decided (that event's own time) is printed beside it.
Goal (issue 15): Stagekeeper within 1.15x of the plain script, steady over 5 runs.
Each side's process CPU time in its timed part (all its threads; vcsim's own is not counted) is
printed too: unlike wall time, it hardly moves with the machine's load. `--count` also counts, in
each timed part, the vCenter calls (by method) and Stagekeeper's event-store writes: figures the
machine's load does not change (the counting adds a little time to both sides).
Usage: .venv/bin/python -m scripts.bench.deploy [--runs 5] [--machines 20] [--clone-ms 200] [--count]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from pyVmomi import vim
from pyVmomi.SoapAdapter import SoapStubAdapter

from adapters import interpreter
from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.pyvmomi import inventory
from scripts.bench.common import schema
from scripts.vcsim_harness import Vcsim, start

PARALLEL = 8
POOL_PATH = "/DC0/host/DC0_C0/Resources"


class Calls:
    """vCenter calls (SOAP methods, by name) and event-store writes made while counting."""

    def __init__(self) -> None:
        self.methods: Counter[str] = Counter()
        self.writes = 0
        self._on = False
        self._lock = threading.Lock()

    @contextmanager
    def installed(self) -> Iterator[None]:
        invoke = SoapStubAdapter.InvokeMethod
        calls = self

        def counted(self: Any, mo: Any, info: Any, args: Any, outerStub: Any = None) -> Any:  # noqa: N803
            if calls._on:
                with calls._lock:
                    calls.methods[info.wsdlName] += 1
            return invoke(self, mo, info, args, outerStub)

        SoapStubAdapter.InvokeMethod = counted
        try:
            yield
        finally:
            SoapStubAdapter.InvokeMethod = invoke

    @contextmanager
    def counting(self) -> Iterator[None]:
        self._on = True
        try:
            yield
        finally:
            self._on = False

    def wrote(self, _: object) -> None:
        if self._on:
            self.writes += 1

    def take(self) -> tuple[int, Counter[str], int]:
        taken = (sum(self.methods.values()), self.methods, self.writes)
        self.methods, self.writes = Counter(), 0
        return taken


def compared(plain: tuple[int, Counter[str], int], ours: tuple[int, Counter[str], int]) -> str:
    """The calls Stagekeeper made more (or fewer) than the plain script, by method."""
    methods = sorted(set(plain[1]) | set(ours[1]))
    more = ", ".join(f"{m} {ours[1][m] - plain[1][m]:+d}" for m in methods if ours[1][m] != plain[1][m])
    return f"vCenter calls plain {plain[0]}, Stagekeeper {ours[0]} ({more}); Stagekeeper's event-store writes {ours[2]}"


def plain_script(sim: Vcsim, machines: int, calls: Calls | None = None) -> float:
    """What an administrator's own parallel pyvmomi script would do."""
    driver = sim.driver()
    session = driver.session
    content = session.content
    template = next(vm for vm, p in driver._vms() if p.get("name") == "tpl-ubuntu-2404")
    dc = inventory.datacenter(content, "DC0")
    pool = driver._pool(POOL_PATH)
    network = inventory.network(content, dc, "VM Network")
    # Placed as Stagekeeper places them: on a host of the pool's cluster and a datastore, named in
    # the clone's RelocateSpec (the harness's vcsim honours the host, as vCenter does).
    hosts = list(pool.owner.host)
    datastore = pool.owner.datastore[0]
    run = uuid.uuid4().hex[:6]

    def one(i: int) -> None:
        where = vim.vm.RelocateSpec(pool=pool, host=hosts[i % len(hosts)], datastore=datastore)
        spec = vim.vm.CloneSpec(location=where, powerOn=False, template=False)
        vm = session.wait(template.CloneVM_Task(folder=dc.vmFolder, name=f"plain-{run}-{i}", spec=spec), "clone")
        session.wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(numCPUs=2, memoryMB=2048)), "resize")
        card = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard))
        card.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network.name, network=network)
        card.addressType, card.macAddress = "manual", f"00:50:56:3f:{i // 256:02x}:{i % 256:02x}"
        change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=card)
        session.wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[change])), "nic")
        custom = vim.vm.customization.Specification(
            identity=vim.vm.customization.LinuxPrep(hostName=vim.vm.customization.FixedName(name=f"m{i}"), domain="x"),
            globalIPSettings=vim.vm.customization.GlobalIPSettings(),
            nicSettingMap=[
                vim.vm.customization.AdapterMapping(
                    adapter=vim.vm.customization.IPSettings(
                        ip=vim.vm.customization.FixedIp(ipAddress=f"10.99.{i // 250}.{i % 250 + 2}"),
                        subnetMask="255.255.0.0",
                    )
                )
            ],
        )
        session.wait(vm.CustomizeVM_Task(spec=custom), "customize")
        session.wait(vm.PowerOnVM_Task(), "power on")

    started, cpu = time.perf_counter(), time.process_time()
    with (calls or Calls()).counting(), ThreadPoolExecutor(PARALLEL) as pool_executor:
        list(pool_executor.map(one, range(machines)))
    elapsed = time.perf_counter() - started
    CPU_PLAIN.append(time.process_time() - cpu)
    driver.close()
    return elapsed


TO_DEPLOYED: list[float] = []  # each run's time until `Deployed` was decided
CPU_PLAIN: list[float] = []  # each run's process CPU time in the timed part, plain script
CPU_OURS: list[float] = []  # the same, Stagekeeper


def stagekeeper(sim: Vcsim, url: str, machines: int, run: int, calls: Calls | None = None) -> float:
    settings = Settings(database_url=url, admin_password="bench", vcenter_parallel_tasks=PARALLEL)
    runtime = Runtime(settings, vcenter=sim.driver())
    try:
        app = runtime.app
        app.import_templates(["tpl-ubuntu-2404"], None, actor="bench")
        stage = {"name": "int", "resource_pool": f"{POOL_PATH}/bench-{uuid.uuid4().hex[:6]}",
                 "ip_pools": [{"cidr": f"10.{98 + run}.0.0/16", "gateway": f"10.{98 + run}.0.1"}]}  # fmt: skip
        service = app.register_service(f"bench-{uuid.uuid4().hex[:6]}", "", [stage], actor="bench").value
        specs = [
            {"name": f"m{i:02d}", "template": "tpl-ubuntu-2404", "cpus": 2, "memory_mib": 2048, "clone_mode": "full",
             "nics": [{"network": "VM Network"}], "customization": {"os": "linux", "ip_mode": "static-pool"}}
            for i in range(machines)
        ]  # fmt: skip
        configuration = app.create_configuration(
            service.id, "bench", "", [{"name": "VM Network"}], specs, actor="bench"
        ).value
        runtime.catch_up()  # the stage pool is created before timing starts
        calls = calls or Calls()
        app.on_commit(calls.wrote)
        with calls.counting():
            wall, started, cpu = time.time(), time.perf_counter(), time.process_time()
            deployment = app.deploy(configuration.id, "int", actor="bench").value
            runtime.process_follower.catch_up()
            elapsed = time.perf_counter() - started
            CPU_OURS.append(time.process_time() - cpu)
        state = app.deployment(deployment.id).state
        assert state == "deployed", app.deployment(deployment.id).failure
        assert len(runtime.vcenter.find_vms(deployment.id)) == machines
        # When `Deployed` was decided (the event's own time, written in the same write): what a
        # user sees as the end of the deploy; the process manager's work after it (verification)
        # is in `elapsed`.
        [deployed] = [e for e in app.repository.event_store.get(deployment.id) if type(e).__name__ == "Deployed"]
        TO_DEPLOYED.append(deployed.timestamp.timestamp() - wall)
        return elapsed
    finally:
        runtime.close()


def main() -> None:
    # The interpreter as a `stagekeeper serve` or `worker` process runs (the plain script's threads
    # share it): STAGEKEEPER_SWITCH_INTERVAL_MS compares switch intervals.
    interpreter.settle(Settings())
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--clone-ms", type=int, default=200, help="vCenter time per clone")
    parser.add_argument("--power-ms", type=int, default=100, help="vCenter time per power-on")
    parser.add_argument("--count", action="store_true", help="count vCenter calls and event-store writes")
    args = parser.parse_args()
    calls = Calls() if args.count else None
    counted: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, schema() as (_, url):
        sim = start(Path(tmp) / "vcsim.log")
        try:
            sim.control("method-delay", method="CloneVM_Task", ms=args.clone_ms)
            sim.control("method-delay", method="PowerOnVM_Task", ms=args.power_ms)
            plain: list[float] = []
            ours: list[float] = []
            for run in range(args.runs):
                with calls.installed() if calls else nullcontext():
                    plain.append(plain_script(sim, args.machines, calls))
                    plain_calls = calls.take() if calls else None
                    # Each run is a new service: its IP range must not overlap the previous run's.
                    ours.append(stagekeeper(sim, url, args.machines, run, calls))
                    if calls and plain_calls:
                        counted.append(f"run {run}: {compared(plain_calls, calls.take())}")
        finally:
            sim.stop()
    ratios = [o / p for o, p in zip(ours, plain, strict=True)]
    print(f"vcsim: clone {args.clone_ms} ms, power-on {args.power_ms} ms, {PARALLEL} parallel tasks")
    print(f"plain pyvmomi script, {args.machines} machines: {', '.join(f'{t:.2f}s' for t in plain)}")
    print(f"Stagekeeper deploy,   {args.machines} machines: {', '.join(f'{t:.2f}s' for t in ours)}")
    print(
        f"ratio Stagekeeper / plain over {args.runs} runs: min {min(ratios):.2f}x, "
        f"median {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x (goal <= 1.15x, every run)"
    )
    cpu_ratios = [o / p for o, p in zip(CPU_OURS, CPU_PLAIN, strict=True)]
    print(
        f"process CPU in the timed part, plain {', '.join(f'{t:.2f}s' for t in CPU_PLAIN)}; Stagekeeper "
        f"{', '.join(f'{t:.2f}s' for t in CPU_OURS)}; ratio min {min(cpu_ratios):.2f}x, "
        f"median {statistics.median(cpu_ratios):.2f}x, max {max(cpu_ratios):.2f}x"
    )
    for line in counted:
        print(line)
    to_deployed = [d / p for d, p in zip(TO_DEPLOYED, plain, strict=True)]
    print(
        f"until Deployed was decided (without the verification after it): "
        f"{', '.join(f'{t:.2f}s' for t in TO_DEPLOYED)}; ratio min {min(to_deployed):.2f}x, "
        f"median {statistics.median(to_deployed):.2f}x, max {max(to_deployed):.2f}x"
    )


if __name__ == "__main__":
    main()
