"""Deployments become VMs: the process manager and the pyvmomi driver against vcsim, on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from scripts.vcsim_harness import Vcsim
from tests.support import ROOT_POOL, THREE_TIER, machine, postgres_schema, runtime_for, stages

POOL = {"cidr": "10.60.0.0/24", "gateway": "10.60.0.1", "dns": ["10.60.0.2"], "first": "10.60.0.10"}


@pytest.fixture
def runtime(vcsim: Vcsim) -> Iterator[Runtime]:
    vcsim.control("reset")
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim.driver(task_timeout=1.5))
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


def service_with(runtime: Runtime, name: str, machines: list[dict[str, object]]) -> tuple[UUID, UUID]:
    service_id = runtime.app.register_service(name, "", stages("int", "test"), actor="alice").value.id
    runtime.app.update_stage(service_id, "int", {"ip_pools": [POOL]}, actor="alice")
    configuration_id = runtime.app.create_configuration(
        service_id, "c", "", [{"name": "front"}], machines, actor="alice"
    ).value.id
    return service_id, configuration_id


def test_a_three_tier_configuration_deploys_promotes_and_undeploys_on_vcsim(runtime: Runtime) -> None:
    _, configuration_id = service_with(runtime, "payroll", THREE_TIER)
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed", deployment.failure
    vms = {vm.machine or "": vm for vm in runtime.vcenter.find_vms(deployment_id)}
    assert sorted(vms) == ["app1", "db1", "web1", "web2"]
    for machine_state in deployment.machines:
        vm = vms[machine_state["name"]]
        addressing = machine_state["addressing"]
        assert vm.resource_pool == f"{ROOT_POOL}/int-pool"
        assert vm.powered_on
        assert vm.hostname == machine_state["spec"]["customization"]["hostname"]
        assert vm.ip == addressing["ip"]
        assert (vm.ip or "").startswith("10.60.0.")
        assert list(vm.macs) == [n["mac"] for n in addressing["macs"]]
        assert (vm.cpus, vm.memory_mib) == (2, 2048)
    runtime.app.promote(deployment_id, actor="bob")
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).stage == "test"
    assert {vm.resource_pool for vm in runtime.vcenter.find_vms(deployment_id)} == {f"{ROOT_POOL}/test-pool"}
    runtime.app.undeploy(deployment_id, actor="bob")
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "undeployed"
    assert runtime.vcenter.find_vms(deployment_id) == []


def test_an_injected_clone_fault_fails_cleanly_and_a_retry_succeeds(runtime: Runtime, vcsim: Vcsim) -> None:
    _, configuration_id = service_with(runtime, "faulty", THREE_TIER)
    vcsim.control("task-fault", match="VirtualMachine.cloneVm", fault="InsufficientResourcesFault",
                  msg="not enough memory on DC0_C0", count=1)  # fmt: skip
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "failed"
    assert "InsufficientResourcesFault" in (deployment.failure or "")
    assert runtime.vcenter.find_vms(deployment_id) == []
    runtime.app.retry_deployment(deployment_id, actor="alice")
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    assert len(runtime.vcenter.find_vms(deployment_id)) == 4


def test_a_hung_clone_times_out_fails_and_the_retry_adopts_what_it_left(runtime: Runtime, vcsim: Vcsim) -> None:
    _, configuration_id = service_with(runtime, "slow", [machine("solo")])
    vcsim.control("task-fault", match="VirtualMachine.cloneVm", delay_ms=3000, count=1)
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    started = time.monotonic()
    runtime.catch_up()
    assert time.monotonic() - started < 3.0  # the 1.5 s task timeout, not the 3 s hang
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "failed"
    assert "did not finish" in (deployment.failure or "")
    assert runtime.vcenter.find_vms(deployment_id) == []
    time.sleep(2.0)  # the hung clone completes in vCenter after all, leaving an untagged VM
    runtime.app.retry_deployment(deployment_id, actor="alice")
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    assert len(runtime.vcenter.find_vms(deployment_id)) == 1


def test_a_worker_killed_mid_deploy_of_twenty_machines_finishes_with_exactly_twenty_vms(
    vcsim: Vcsim, tmp_path: Path
) -> None:
    vcsim.control("reset")
    # Each clone takes 150 ms in vCenter, so the kill lands mid-deploy.
    vcsim.control("method-delay", method="CloneVM_Task", ms=150)
    try:
        with postgres_schema() as url:
            commands = runtime_for(url, vcenter=vcsim.driver())
            commands.app.import_templates(None, True, actor="admin")
            machines = [machine(f"m{i:02d}") for i in range(20)]
            _, configuration_id = service_with(commands, "big", machines)
            env = {
                **os.environ,
                "STAGEKEEPER_DATABASE_URL": url,
                "STAGEKEEPER_VCENTER_DRIVER": "pyvmomi",
                "STAGEKEEPER_VCENTER_URL": vcsim.sdk,
                "STAGEKEEPER_VCENTER_USER": "user",
                "STAGEKEEPER_VCENTER_PASSWORD": "pass",
                "STAGEKEEPER_VCENTER_PARALLEL_TASKS": "4",
                "STAGEKEEPER_POLL_SECONDS": "0.05",
            }
            command = [sys.executable, "-m", "api.cli", "worker"]
            log = (tmp_path / "worker.log").open("wb")
            worker = subprocess.Popen(command, env=env, stdout=log, stderr=log)
            deployment_id = commands.app.deploy(configuration_id, "int", actor="alice").value.id
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                provisioned = [
                    m for m in commands.app.deployment(deployment_id).machines if m["state"] == "provisioned"
                ]
                if len(provisioned) >= 3:
                    break
                time.sleep(0.02)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            mid = commands.app.deployment(deployment_id)
            assert mid.state == "provisioning"
            done_before = sum(m["state"] == "provisioned" for m in mid.machines)
            assert 3 <= done_before < 20
            restarted = subprocess.Popen(command, env=env, stdout=log, stderr=log)
            try:
                deadline = time.monotonic() + 120
                while commands.app.deployment(deployment_id).state != "deployed" and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                restarted.terminate()
                restarted.wait(10)
            assert commands.app.deployment(deployment_id).state == "deployed"
            vms = commands.vcenter.find_vms(deployment_id)
            assert len(vms) == 20
            assert len({vm.name for vm in vms}) == 20
            assert sorted(vm.machine or "" for vm in vms) == [f"m{i:02d}" for i in range(20)]
            commands.close()
    finally:
        vcsim.control("reset")


def test_a_promotion_to_another_cluster_reclones_on_vcsim(runtime: Runtime) -> None:
    service_id, configuration_id = service_with(runtime, "crossing", THREE_TIER[:2])
    runtime.app.update_stage(service_id, "test", {"resource_pool": "/DC0/host/DC0_H0/Resources/crossing"}, "alice")
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    before = {vm.machine: vm for vm in runtime.vcenter.find_vms(deployment_id)}
    runtime.app.promote(deployment_id, actor="alice")
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert (deployment.state, deployment.stage) == ("deployed", "test"), deployment.failure
    after = {vm.machine: vm for vm in runtime.vcenter.find_vms(deployment_id)}
    assert sorted(after, key=str) == sorted(before, key=str)
    for name, vm in after.items():
        assert vm.resource_pool == "/DC0/host/DC0_H0/Resources/crossing"
        assert vm.vm_id != before[name].vm_id
        assert vm.powered_on
        assert vm.macs == before[name].macs


def test_a_stage_pool_that_runs_out_fails_the_deployment_with_its_name_on_vcsim(runtime: Runtime) -> None:
    service_id = runtime.app.register_service("tiny", "", stages("int", "test"), actor="alice").value.id
    one_address = {"cidr": "10.70.0.0/24", "gateway": "10.70.0.1", "first": "10.70.0.10", "last": "10.70.0.10"}
    runtime.app.update_stage(service_id, "test", {"ip_pools": [one_address]}, actor="alice")
    configuration_id = runtime.app.create_configuration(
        service_id, "c", "", [{"name": "front"}], [machine("web1"), machine("web2")], actor="alice"
    ).value.id
    deployment_id = runtime.app.deploy(configuration_id, "test", actor="alice").value.id
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "failed"
    assert deployment.failure == "stage test's IP pool 10.70.0.0/24 has no free address"
    assert runtime.vcenter.find_vms(deployment_id) == []  # nothing was cloned
