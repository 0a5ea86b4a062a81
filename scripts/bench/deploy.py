"""Deploying 20 machines against vcsim: Stagekeeper next to a plain parallel pyvmomi script.

Both do the same vCenter work per machine with the same parallelism (8): clone from a
template into the stage pool, set CPU/memory, attach the NIC with a manual MAC, apply guest
customisation with a static IP, power on. Stagekeeper also records every step as events in
PostgreSQL, claims IPs and MACs, tags VMs, and places each machine (DRS is asked, and as vcsim
ignores the host a clone asks for, each clone is relocated to it). vcsim adds a fixed delay to
clones and power-ons so vCenter time dominates, as on a real vCenter.
Goal (issue 15): Stagekeeper within 1.15x of the plain script, steady over 5 runs.

How the runs are kept comparable (the machine is shared, its load drifts during a run):
- one unmeasured round of each side first: vcsim's first clones, the first login and Python's
  first calls through each code path are slower, and would weigh on whichever side ran first;
- then --runs rounds, each timing both sides back to back, the order alternating from round to
  round, and the ratio taken per round (Stagekeeper / the plain script of the same round), so a
  change in load weighs on both sides of a ratio alike; min / median / max are printed;
- every round destroys the VMs it made (untimed), so each starts from the same inventory;
- both sides run in this one process, so a full garbage collection (about 130 ms here, every
  thread stopped) falls on whichever side crosses the collector's threshold, often because of
  the other side's set-up: each side collects before its clock starts.
Like an administrator's script, the plain one looks up its template, pool and network before
its clock starts; Stagekeeper has been told of the template (imported) and has created the
stage's pool before its clock starts, the rest (placement, addresses, events) is timed.
Usage: .venv/bin/python -m scripts.bench.deploy [--machines 20] [--runs 5] [--clone-ms 200]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyVmomi import vim

from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.pyvmomi import inventory
from scripts.bench.common import schema
from scripts.vcsim_harness import Vcsim, start

PARALLEL = 8
POOL_PATH = "/DC0/host/DC0_C0/Resources"


def plain_script(sim: Vcsim, machines: int) -> tuple[float, list[str]]:
    """What an administrator's own parallel pyvmomi script would do."""
    driver = sim.driver()
    session = driver.session
    content = session.content
    template = next(vm for vm, p in driver._vms() if p.get("name") == "tpl-ubuntu-2404")
    dc = inventory.datacenter(content, "DC0")
    pool = driver._pool(POOL_PATH)
    network = inventory.network(content, dc, "VM Network")
    assert dc is not None
    assert network is not None
    run = uuid.uuid4().hex[:6]

    def one(i: int) -> None:
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=pool), powerOn=False, template=False)
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

    gc.collect()  # see the docstring
    started = time.perf_counter()
    with ThreadPoolExecutor(PARALLEL) as pool_executor:
        list(pool_executor.map(one, range(machines)))
    elapsed = time.perf_counter() - started
    names = {f"plain-{run}-{i}" for i in range(machines)}
    made = [vm._moId for vm, p in driver._vms() if p.get("name") in names]
    driver.close()
    assert len(made) == machines
    return elapsed, made


def stagekeeper(sim: Vcsim, url: str, machines: int, run: int) -> tuple[float, list[str]]:
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
        gc.collect()  # see the docstring
        started = time.perf_counter()
        deployment = app.deploy(configuration.id, "int", actor="bench").value
        runtime.process_follower.catch_up()
        elapsed = time.perf_counter() - started
        state = app.deployment(deployment.id).state
        assert state == "deployed", app.deployment(deployment.id).failure
        made = [vm.vm_id for vm in runtime.vcenter.find_vms(deployment.id)]
        assert len(made) == machines
        return elapsed, made
    finally:
        runtime.close()


def destroy(sim: Vcsim, vm_ids: list[str]) -> None:
    """Untimed: the next round starts from the same inventory."""
    driver = sim.driver()

    def one(vm_id: str) -> None:
        driver.power_off(vm_id)
        driver.destroy(vm_id)

    try:
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(one, vm_ids))
    finally:
        driver.close()


def spread(values: list[float], unit: str = "") -> str:
    return f"{min(values):.2f}{unit} / {statistics.median(values):.2f}{unit} / {max(values):.2f}{unit}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (after one unmeasured warm-up)")
    parser.add_argument("--clone-ms", type=int, default=200, help="vCenter time per clone")
    parser.add_argument("--power-ms", type=int, default=100, help="vCenter time per power-on")
    args = parser.parse_args()
    if not 1 <= args.runs <= 100:
        parser.error("--runs must be between 1 and 100")
    plain: list[float] = []
    ours: list[float] = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, schema() as (_, url):
        sim = start(Path(tmp) / "vcsim.log")
        try:
            sim.control("method-delay", method="CloneVM_Task", ms=args.clone_ms)
            sim.control("method-delay", method="PowerOnVM_Task", ms=args.power_ms)
            for run in range(args.runs + 1):  # run 0 warms up, unmeasured
                # Each round is a new service: its IP range must not overlap an earlier round's.
                if run % 2:
                    ours_s, made = stagekeeper(sim, url, args.machines, run)
                    plain_s, more = plain_script(sim, args.machines)
                else:
                    plain_s, made = plain_script(sim, args.machines)
                    ours_s, more = stagekeeper(sim, url, args.machines, run)
                destroy(sim, made + more)
                if run == 0:
                    continue
                plain.append(plain_s)
                ours.append(ours_s)
                print(
                    f"run {run}: plain {plain_s:.2f}s, Stagekeeper {ours_s:.2f}s, {ours_s / plain_s:.2f}x", flush=True
                )
        finally:
            sim.stop()
    ratios = [o / p for o, p in zip(ours, plain, strict=True)]
    print(f"vcsim: clone {args.clone_ms} ms, power-on {args.power_ms} ms, {PARALLEL} parallel tasks; "
          f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")  # fmt: skip
    print(f"plain pyvmomi script, {args.machines} machines, min / median / max: {spread(plain, 's')}")
    print(f"Stagekeeper deploy,   {args.machines} machines, min / median / max: {spread(ours, 's')}")
    print(f"ratio Stagekeeper / plain per run, min / median / max: {spread(ratios, 'x')} (goal <= 1.15x)")


if __name__ == "__main__":
    main()
