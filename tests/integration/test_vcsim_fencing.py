"""Fenced networks, copies, snapshots and the swap on vcsim (DVS0, -pg 3), on PostgreSQL: the
pyvmomi driver's port groups and NIC backings as vCenter reports them.

vcsim does not refuse to destroy a port group in use (real vCenter does: ResourceInUse), so the
teardown order is checked from the events (machines, then gateway, then port groups), not by a
refusal. vcsim's revert moves only the snapshot pointer: the revert test checks tree and power.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from scripts.vcsim_harness import Vcsim
from tests.fencing import SWITCH, three_tier
from tests.support import postgres_schema, runtime_for


@pytest.fixture
def runtime(vcsim: Vcsim) -> Iterator[Runtime]:
    vcsim.control("reset")
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim.driver(task_timeout=5))
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


def production(runtime: Runtime) -> UUID:
    configuration_id = three_tier(runtime)
    deployment_id = runtime.app.deploy(configuration_id, "prod", actor="alice").value.id
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed", deployment.failure
    return deployment_id


def own_portgroups(runtime: Runtime, deployment_id: UUID) -> dict[str, str]:
    prefix = f"sk-{deployment_id.hex[:12]}-"
    return {p.name: p.key for p in runtime.vcenter.list_portgroups(SWITCH) if p.name.startswith(prefix)}


def vms_of(runtime: Runtime, deployment_id: UUID) -> dict[str, str]:
    return {vm.machine or "": vm.vm_id for vm in runtime.vcenter.find_vms(deployment_id)}


def test_two_fenced_copies_are_identical_inside_and_apart_outside(runtime: Runtime) -> None:
    source = production(runtime)
    copies = [runtime.app.copy_deployment(source, "test", actor="bob", fence=True).value.id for _ in range(2)]
    runtime.catch_up()
    nics: dict[UUID, dict[str, list[tuple[str | None, str | None]]]] = {}
    for copy_id in copies:
        copy = runtime.app.deployment(copy_id)
        assert copy.state == "deployed", copy.failure
        groups = own_portgroups(runtime, copy_id)
        assert sorted(groups) == sorted(f"sk-{copy_id.hex[:12]}-{n}" for n in ("front", "back"))
        vms = vms_of(runtime, copy_id)
        assert sorted(vms) == ["_fence-gateway", "app", "db", "web"]
        nics[copy_id] = {
            name: [(n.portgroup_key, n.mac) for n in runtime.vcenter.vm_nics(vm_id)] for name, vm_id in vms.items()
        }
        # NICs sit on this fence's own port groups (backing.port.portgroupKey), the gateway on all + outside.
        assert [key for key, _ in nics[copy_id]["app"]] == [
            groups[f"sk-{copy_id.hex[:12]}-{n}"] for n in ("front", "back")
        ]
        gateway = runtime.vcenter.vm_nics(vms["_fence-gateway"])
        assert [n.network for n in gateway] == [
            f"sk-{copy_id.hex[:12]}-front",
            f"sk-{copy_id.hex[:12]}-back",
            "VM Network",
        ]
    a, b = copies
    for machine in ("web", "app", "db"):
        assert [mac for _, mac in nics[a][machine]] == [mac for _, mac in nics[b][machine]]  # same MACs
        assert {k for k, _ in nics[a][machine]}.isdisjoint({k for k, _ in nics[b][machine]})  # other port groups
        assert (
            runtime.app.deployment(a).machine(machine)["addressing"]["ip"]
            == runtime.app.deployment(b).machine(machine)["addressing"]["ip"]
        )
    fences = [runtime.app.deployment(c).fence_view() for c in copies]
    external = [f["gateway"]["external_ip"] for f in fences if f] + [
        n["external_ip"] for f in fences if f for n in f["nat"]
    ]
    assert len(external) == len(set(external)) == 8
    # Undeploy one: the other keeps every VM and port group; none of the first one's is left.
    kept = (vms_of(runtime, b), own_portgroups(runtime, b))
    runtime.app.undeploy(a, actor="bob")
    runtime.catch_up()
    assert runtime.app.deployment(a).state == "undeployed"
    assert vms_of(runtime, a) == {}
    assert own_portgroups(runtime, a) == {}
    assert (vms_of(runtime, b), own_portgroups(runtime, b)) == kept
    # The order real vCenter needs (vcsim would not refuse another): machines, gateway, port groups.
    kinds = events(runtime, a)
    undeploy = kinds[kinds.index("Deployment.UndeployRequested") :]
    order = [k for k in undeploy if k.endswith(("MachineDestroyed", "FenceGatewayChanged", "FenceNetworkChanged"))]
    assert (
        order
        == ["Deployment.MachineDestroyed"] * 3
        + ["Deployment.FenceGatewayChanged"]
        + ["Deployment.FenceNetworkChanged"] * 2
    )
    assert undeploy[-1] == "Deployment.Undeployed"


def test_copy_snapshot_revert_swap_and_swap_back_on_vcsim(runtime: Runtime) -> None:
    source = production(runtime)
    prod_pool = runtime.app.deployment(source).resource_pool
    copy_id = runtime.app.copy_deployment(source, "test", actor="bob", fence=True).value.id
    runtime.catch_up()
    assert runtime.app.deployment(copy_id).state == "deployed"
    runtime.app.snapshot_deployment(copy_id, "before patch", actor="bob")
    runtime.catch_up()
    machines = {k: v for k, v in vms_of(runtime, copy_id).items() if not k.startswith("_")}
    assert all(runtime.vcenter.list_snapshots(vm_id) == ["before patch"] for vm_id in machines.values())
    runtime.vcenter.power_off(machines["app"])  # a change
    runtime.app.revert_deployment(copy_id, "before patch", actor="bob")
    runtime.catch_up()
    assert runtime.vcenter.power_state(machines["app"]) == "poweredOn"
    runtime.app.swap_deployment(copy_id, source, actor="petra", keep_previous=True, reason="patch tested")
    runtime.catch_up()
    copy = runtime.app.deployment(copy_id)
    assert (copy.state, copy.stage, copy.fence) == ("deployed", "prod", None)
    on_prod = {vm.machine: vm for vm in runtime.vcenter.find_vms(copy_id)}
    assert sorted(on_prod, key=str) == ["app", "db", "web"]
    assert all(vm.powered_on and vm.resource_pool == prod_pool for vm in on_prod.values())
    # Out of the fence: on the stage's networks (vcsim has no "front"/"back": the driver's default network).
    assert not any(n.network.startswith("sk-") for n in runtime.vcenter.vm_nics(on_prod["app"].vm_id))
    assert own_portgroups(runtime, copy_id) == {}
    assert not any(vm.powered_on for vm in runtime.vcenter.find_vms(source))
    runtime.app.swap_back(source, actor="petra")
    runtime.catch_up()
    assert runtime.app.deployment(source).replaced == str(copy_id)
    assert all(vm.powered_on for vm in runtime.vcenter.find_vms(source))
    assert not any(vm.powered_on for vm in runtime.vcenter.find_vms(copy_id))


def worker_env(url: str, vcsim: Vcsim) -> dict[str, str]:
    return {
        **os.environ, "STAGEKEEPER_DATABASE_URL": url, "STAGEKEEPER_VCENTER_DRIVER": "pyvmomi",
        "STAGEKEEPER_VCENTER_URL": vcsim.sdk, "STAGEKEEPER_VCENTER_USER": "user",
        "STAGEKEEPER_VCENTER_PASSWORD": "pass", "STAGEKEEPER_VCENTER_PARALLEL_TASKS": "2",
        "STAGEKEEPER_POLL_SECONDS": "0.05",
    }  # fmt: skip


def kill_when(
    commands: Runtime, env: dict[str, str], log: Path, ready: Callable[[], bool], done: Callable[[], bool]
) -> None:
    """Start a worker, SIGKILL it once `ready()`, start another and wait until `done()`."""
    command = [sys.executable, "-m", "api.cli", "worker"]
    out = log.open("ab")
    worker = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert ready(), log.read_text()[-2000:]
    assert not done(), "the kill came too late to test anything"
    restarted = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 120
        while not done() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        restarted.terminate()
        restarted.wait(10)
    assert done(), log.read_text()[-2000:]


def run_until(env: dict[str, str], log: Path, done: Callable[[], bool]) -> None:
    out = log.open("ab")
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 120
        while not done() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(10)
    assert done(), log.read_text()[-2000:]


def events(commands: Runtime, deployment_id: UUID) -> list[str]:
    return [type(e).__qualname__ for e in commands.app.repository.event_store.get(deployment_id)]


def test_a_worker_killed_mid_fenced_deploy_and_mid_swap_leaves_exactly_the_right_vms(
    vcsim: Vcsim, tmp_path: Path
) -> None:
    vcsim.control("reset")
    vcsim.control("method-delay", method="CloneVM_Task", ms=300)
    vcsim.control("method-delay", method="PowerOnVM_Task", ms=300)
    try:
        with postgres_schema() as url:
            commands = runtime_for(url, vcenter=vcsim.driver())
            commands.app.import_templates(None, True, actor="admin")
            env = worker_env(url, vcsim)
            configuration_id = three_tier(commands)
            source = commands.app.deploy(configuration_id, "prod", actor="alice").value.id

            def deployed(deployment_id: UUID) -> Callable[[], bool]:
                return lambda: commands.app.deployment(deployment_id).state == "deployed"

            def fence_started(deployment_id: UUID) -> Callable[[], bool]:
                return lambda: "Deployment.FenceNetworkChanged" in events(commands, deployment_id)

            run_until(env, tmp_path / "worker.log", deployed(source))
            # 1. killed while the fenced copy builds its port groups and machines
            copy_id = commands.app.copy_deployment(source, "test", actor="bob", fence=True).value.id
            kill_when(commands, env, tmp_path / "worker.log", fence_started(copy_id), deployed(copy_id))
            vms = commands.vcenter.find_vms(copy_id)
            assert sorted(vm.machine or "" for vm in vms) == ["_fence-gateway", "app", "db", "web"]
            assert len({vm.name for vm in vms}) == 4
            assert len(own_portgroups(commands, copy_id)) == 2
            assert [p.name for p in commands.vcenter.list_portgroups(SWITCH)].count(f"sk-{copy_id.hex[:12]}-front") == 1
            # 2. killed in the middle of the swap
            commands.app.swap_deployment(copy_id, source, actor="petra", keep_previous=True)

            def swap_started() -> bool:
                return "Deployment.SwapStepDone" in events(commands, copy_id)

            def swapped() -> bool:
                return commands.app.deployment(copy_id).state == "deployed"

            kill_when(commands, env, tmp_path / "worker.log", swap_started, swapped)
            copy = commands.app.deployment(copy_id)
            assert (copy.stage, copy.fence) == ("prod", None)
            vms = commands.vcenter.find_vms(copy_id)
            assert sorted(vm.machine or "" for vm in vms) == ["app", "db", "web"]
            assert all(vm.powered_on for vm in vms)
            assert own_portgroups(commands, copy_id) == {}
            assert not any(vm.powered_on for vm in commands.vcenter.find_vms(source))
            stored = commands.app.repository.event_store.get(copy_id)
            done = [f"{e.step}:{e.machine}" for e in stored if type(e).__qualname__ == "Deployment.SwapStepDone"]  # type: ignore[attr-defined]
            assert len(done) == len(set(done))  # no step recorded twice
            commands.close()
    finally:
        vcsim.control("reset")
