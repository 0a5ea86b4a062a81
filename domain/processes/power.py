"""Starting and stopping machines in their configuration's start order (domain/startorder.py):
new machines on deploy and upgrade, and every machine on whole-deployment power on / off.

Each machine's result is recorded as its own event from the calling thread (MachineProvisioned,
MachinePowerChanged or PowerFailed), so a worker killed half-way finds on restart exactly the
machines still to do; a group with nothing left to do does not wait again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.deployment import Deployment
from domain.errors import VCenterFaultError
from domain.ports import VCenterDriver, VmInfo
from domain.startorder import start_groups, start_in_order, stop_groups, stop_in_order

if TYPE_CHECKING:
    from domain.processes.deployments import DeploymentProcess

ACTOR = "stagekeeper"


def power_on_in_order(
    vcenter: VCenterDriver,
    sleep: Callable[[float], None],
    vms: dict[str, tuple[Mapping[str, Any], str]],
    record: Callable[[str, VmInfo], None],
    parallel_tasks: int = 8,
) -> None:
    """Power on VMs that exist (machine name -> (machine spec, vm id)) in the specs' start order,
    a group's VMs in parallel; `record(machine, vm)` is called from this thread as each one runs.
    Deploy, copy, restore and swap all start their machines through this one function."""

    def start(names: tuple[str, ...]) -> None:
        with ThreadPoolExecutor(parallel_tasks, thread_name_prefix="sk-start") as pool:
            started = list(pool.map(lambda n: vcenter.power_on(vms[n][1]), names))
        for name, vm in zip(names, started, strict=True):
            record(name, vm)

    start_in_order(
        start_groups(spec for spec, _ in vms.values()),
        start,
        lambda name, timeout: vcenter.wait_for_tools(vms[name][1], timeout),
        sleep,
    )


def provision_in_order(process: DeploymentProcess, deployment: Deployment, pending: list[dict[str, Any]]) -> list[Any]:
    """Clone and customise `pending` machines in parallel, powered off; then power them on group
    by group, recording each as provisioned once it runs. Returns [] (nothing left to provision)."""
    with ThreadPoolExecutor(process.parallel_tasks, thread_name_prefix="sk-clone") as pool:
        built = list(pool.map(lambda m: process._provision_machine(deployment, m, False), pending))

    def record(name: str, vm: VmInfo) -> None:
        step = partial(
            Deployment.record_machine_provisioned, machine=name, vm_name=vm.name, vm_id=vm.vm_id, ip=vm.ip,
            mac=vm.macs[0] if vm.macs else None, actor=ACTOR,
        )  # fmt: skip
        process.app.record_step(deployment.id, step)

    vms = {m["name"]: (m["spec"], vm.vm_id) for m, vm in zip(pending, built, strict=True)}
    power_on_in_order(process.vcenter, process.sleep, vms, record, process.parallel_tasks)
    return []


def power_deployment(process: DeploymentProcess, deployment_id: UUID, action: str) -> None:
    """Carry out a DeploymentPowerRequested: machines whose oldest pending action is `action`,
    on in start order (with its waits) or off in reverse order."""
    deployment = process.app.deployment(deployment_id)
    todo = {m["name"]: m.get("vm_id") for m in deployment.machines if (m.get("power_pending") or [None])[0] == action}
    failed: set[str] = set()

    def carry_out(name: str) -> str | VCenterFaultError:
        vm_id = todo[name]
        try:
            if not vm_id:
                raise VCenterFaultError(f"machine '{name}' has no VM any more")
            process.vcenter.power(vm_id, action)
            return process.vcenter.power_state(vm_id)
        except VCenterFaultError as fault:
            return fault

    def apply(names: tuple[str, ...]) -> None:
        with ThreadPoolExecutor(process.parallel_tasks, thread_name_prefix="sk-power") as pool:
            results = list(pool.map(carry_out, names))
        for name, result in zip(names, results, strict=True):
            if isinstance(result, VCenterFaultError):
                failed.add(name)
                step = partial(
                    Deployment.record_power_failure, machine=name, action=action, reason=result.message, actor=ACTOR
                )
            else:
                step = partial(
                    Deployment.record_power_changed, machine=name, action=action, power_state=result, actor=ACTOR
                )
            process.app.record_step(deployment_id, step)

    def tools_running(name: str, timeout: float) -> bool:
        vm_id = todo[name]
        return name not in failed and bool(vm_id) and process.vcenter.wait_for_tools(str(vm_id), timeout)

    specs = [m["spec"] for m in deployment.machines]
    if action == "on":
        start_in_order(start_groups(specs), apply, tools_running, process.sleep, wants=lambda n: n in todo)
    else:
        stop_in_order(stop_groups(specs), apply, wants=lambda n: n in todo)
