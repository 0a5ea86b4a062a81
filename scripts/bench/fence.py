"""10 fenced copies of a running 3-tier deployment at once, on vcsim: Stagekeeper next to a plain
pyvmomi script doing the same vCenter work.

Per copy, both create two distributed port groups (own VLANs) on DVS0, clone the three running
VMs of the production deployment onto them with the production MACs, clone a gateway from a
template with a NIC on each port group and one outside, hand it its NAT map (extraConfig) and
power everything on, 8 vCenter tasks at a time. Stagekeeper also records every step as events in
PostgreSQL, claims VLANs and external addresses, and tags VMs. vcsim adds a fixed delay to clones
and power-ons so vCenter time dominates, as on a real vCenter. Prints both wall times and the ratio.
Goal (issue 11): Stagekeeper within 1.3x of the plain script.
Usage: .venv/bin/python -m scripts.bench.fence [--copies 10] [--clone-ms 200] [--power-ms 100]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pyVmomi import vim

from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.pyvmomi import inventory, networks
from scripts.bench.common import schema
from scripts.vcsim_harness import Vcsim, start

PARALLEL = 8
ROOT = "/DC0/host/DC0_C0/Resources"
TIERS = (("web", ("front",)), ("app", ("front", "back")), ("db", ("back",)))


def stage(name: str, second_octet: int, first_vlan: int) -> dict[str, Any]:
    return {
        "name": name, "resource_pool": f"{ROOT}/fence-bench-{uuid.uuid4().hex[:6]}",
        "ip_pools": [{"cidr": f"10.{second_octet}.0.0/16", "gateway": f"10.{second_octet}.0.1"}],
        "dvswitch": "DVS0", "vlan_range": {"first": first_vlan, "last": first_vlan + 999},
        "fence_gateway_template": "tpl-ubuntu-2404", "external_network": "VM Network",
    }  # fmt: skip


def production(runtime: Runtime, run: int) -> uuid.UUID:
    app = runtime.app
    stages = [stage("test", 90 + 2 * run, 100), stage("prod", 91 + 2 * run, 2000)]
    service = app.register_service(f"fence-bench-{uuid.uuid4().hex[:6]}", "", stages, actor="bench").value
    machines = [
        {"name": name, "template": "tpl-ubuntu-2404", "cpus": 1, "memory_mib": 1024, "clone_mode": "full",
         "nics": [{"network": n} for n in nets], "customization": {"os": "linux", "ip_mode": "static-pool"}}
        for name, nets in TIERS
    ]  # fmt: skip
    configuration = app.create_configuration(
        service.id, "shop", "", [{"name": "front"}, {"name": "back"}], machines, actor="bench"
    ).value
    deployment = app.deploy(configuration.id, "prod", actor="bench").value
    runtime.catch_up()
    assert app.deployment(deployment.id).state == "deployed", app.deployment(deployment.id).failure
    return deployment.id


def stagekeeper(sim: Vcsim, url: str, copies: int, run: int) -> float:
    settings = Settings(database_url=url, admin_password="bench", vcenter_parallel_tasks=PARALLEL)
    runtime = Runtime(settings, vcenter=sim.driver())
    try:
        app = runtime.app
        app.import_templates(["tpl-ubuntu-2404"], None, actor="bench")
        source = production(runtime, run)
        started = time.perf_counter()
        ids = [app.copy_deployment(source, "test", actor="bench", fence=True).value.id for _ in range(copies)]
        runtime.process_follower.catch_up()
        elapsed = time.perf_counter() - started
        for copy_id in ids:
            copy = app.deployment(copy_id)
            assert copy.state == "deployed", copy.failure
            assert len(runtime.vcenter.find_vms(copy_id)) == 4
        return elapsed
    finally:
        runtime.close()


def plain_script(sim: Vcsim, copies: int, run: int, parallel: int = PARALLEL) -> float:
    """What an administrator's own parallel pyvmomi script would do for the same fences."""
    driver = sim.driver()
    session = driver.session
    content = session.content
    dc = inventory.datacenter(content, "DC0")
    assert dc is not None
    pool = driver._pool(ROOT)
    dvs = networks.switch(content, "DVS0")
    outside = networks.network_named(content, dc, "VM Network")
    template = next(vm for vm, p in driver._vms() if p.get("name") == "tpl-ubuntu-2404")
    tag = uuid.uuid4().hex[:6]
    # The production VMs the copies clone (running, one per tier).
    sources = {}
    for name, _ in TIERS:
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=pool), powerOn=False, template=False)
        vm = session.wait(template.CloneVM_Task(folder=dc.vmFolder, name=f"plain-{tag}-prod-{name}", spec=spec), "c")
        session.wait(vm.PowerOnVM_Task(), "power on")
        sources[name] = vm

    def portgroup(copy: int, net: str) -> None:
        name = f"plain-{tag}-{copy}-{net}"
        session.wait(dvs.AddDVPortgroup_Task([networks.portgroup_spec(name, 3000 + run * 100 + copy)]), "pg")

    def nics_on(vm: Any, targets: list[Any], macs: list[str | None]) -> None:
        cards = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        changes = []
        for i, target in enumerate(targets):
            card = cards[i] if i < len(cards) else vim.vm.device.VirtualVmxnet3(key=-(i + 1))
            if isinstance(target, vim.dvs.DistributedVirtualPortgroup):
                port = vim.dvs.PortConnection(portgroupKey=target.key, switchUuid=dvs.uuid)
                card.backing = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port)
            else:
                card.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                    deviceName="VM Network", network=target
                )
            if macs[i]:
                card.addressType, card.macAddress = "manual", macs[i]
            op = "edit" if i < len(cards) else "add"
            changes.append(vim.vm.device.VirtualDeviceSpec(operation=op, device=card))
        session.wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)), "nics")

    def clone(copy: int, name: str) -> None:
        groups = {n: networks.network_named(content, dc, f"plain-{tag}-{copy}-{n}") for n in ("front", "back")}
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=pool), powerOn=False, template=False)
        if name == "gw":
            vm = session.wait(template.CloneVM_Task(folder=dc.vmFolder, name=f"plain-{tag}-{copy}-gw", spec=spec), "c")
            nics_on(vm, [groups["front"], groups["back"], outside], [None, None, None])
            option = vim.option.OptionValue(key="guestinfo.stagekeeper.nat", value=json.dumps({"copy": copy}))
            session.wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[option])), "nat")
        else:
            source = sources[name]
            vm = session.wait(
                source.CloneVM_Task(folder=dc.vmFolder, name=f"plain-{tag}-{copy}-{name}", spec=spec), "c"
            )
            nets = dict(TIERS)[name]
            nics_on(vm, [groups[n] for n in nets], [f"00:50:56:3e:{run:02x}:{i:02x}" for i in range(len(nets))])
        session.wait(vm.PowerOnVM_Task(), "power on")

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as executor:
        list(executor.map(lambda a: portgroup(*a), [(c, n) for c in range(copies) for n in ("front", "back")]))
        list(executor.map(lambda a: clone(*a), [(c, n) for c in range(copies) for n in ("web", "app", "db", "gw")]))
    elapsed = time.perf_counter() - started
    driver.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--clone-ms", type=int, default=200, help="vCenter time per clone")
    parser.add_argument("--power-ms", type=int, default=100, help="vCenter time per power-on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, schema() as (_, url):
        sim = start(Path(tmp) / "vcsim.log")
        try:
            sim.control("method-delay", method="CloneVM_Task", ms=args.clone_ms)
            sim.control("method-delay", method="PowerOnVM_Task", ms=args.power_ms)
            plain = [plain_script(sim, args.copies, 0)]
            ours = [stagekeeper(sim, url, args.copies, 0)]
            plain.append(plain_script(sim, args.copies, 1))
            ours.append(stagekeeper(sim, url, args.copies, 1))
            # Stagekeeper builds the copies at once, each with up to PARALLEL tasks: the same bound here.
            wide = [plain_script(sim, args.copies, 2 + i, PARALLEL * args.copies) for i in range(2)]
        finally:
            sim.stop()
    best_plain, best_ours = min(plain), min(ours)
    print(f"vcsim: clone {args.clone_ms} ms, power-on {args.power_ms} ms, {PARALLEL} parallel tasks")
    print(f"plain pyvmomi script, {args.copies} fenced copies: {', '.join(f'{t:.2f}s' for t in plain)}")
    print(f"Stagekeeper copies,   {args.copies} fenced copies: {', '.join(f'{t:.2f}s' for t in ours)}")
    print(f"plain script, {PARALLEL * args.copies} parallel tasks: {', '.join(f'{t:.2f}s' for t in wide)}")
    print(f"ratio Stagekeeper / plain (best of 2): {best_ours / best_plain:.2f}x (goal <= 1.3x)")
    print(f"ratio Stagekeeper / plain with as many parallel tasks: {best_ours / min(wide):.2f}x")


if __name__ == "__main__":
    main()
