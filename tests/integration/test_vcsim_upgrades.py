"""Upgrade in place and whole-deployment power against vcsim (pyvmomi driver, PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pyVmomi import vim

from adapters.runtime import Runtime
from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from scripts.vcsim_harness import Vcsim
from tests.support import machine, postgres_schema, runtime_for, stages

POOL = {"cidr": "10.61.0.0/24", "gateway": "10.61.0.1", "dns": ["10.61.0.2"], "first": "10.61.0.10"}


@pytest.fixture
def runtime(vcsim: Vcsim) -> Iterator[Runtime]:
    vcsim.control("reset")
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim.driver(task_timeout=5))
        runtime.process.sleep = lambda seconds: None
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


@pytest.fixture
def reader(vcsim: Vcsim) -> Iterator[PyVmomiDriver]:
    driver = vcsim.driver()
    yield driver
    driver.close()


def vm_config(reader: PyVmomiDriver, deployment_id: UUID) -> dict[str, dict[str, Any]]:
    """Per machine: vCenter's own record of the VM: its configuration, when it was last modified,
    and every vCenter event about it (reconfigure, power, NIC edits...). vCenter's changeVersion
    would say the same; vcsim 0.24.2 leaves it empty, so `config.modified` and the events stand in."""
    found = {}
    events = reader._content.eventManager
    for vm in reader.find_vms(deployment_id):
        managed = reader._vm(vm.vm_id)
        config = managed.config
        devices = config.hardware.device
        about = vim.event.EventFilterSpec(entity=vim.event.EventFilterSpec.ByEntity(entity=managed, recursion="self"))
        found[vm.machine or ""] = {
            "vm_id": vm.vm_id,
            "change_version": config.changeVersion,
            "modified": config.modified,
            "events": sorted(e.key for e in events.QueryEvents(about)),
            "cpus": config.hardware.numCPU,
            "memory_mib": config.hardware.memoryMB,
            "macs": [d.macAddress for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)],
            "disks_kb": [d.capacityInKB for d in devices if isinstance(d, vim.vm.device.VirtualDisk)],
            "power": vm.powered_on,
        }
    return found


def test_upgrade_from_v1_to_v3_on_vcsim_touches_only_the_added_and_the_resized_vm(
    runtime: Runtime, reader: PyVmomiDriver
) -> None:
    service_id = runtime.app.register_service("shop", "", stages("int"), actor="alice").value.id
    runtime.app.update_stage(service_id, "int", {"ip_pools": [POOL]}, actor="alice")
    v1 = [
        machine("db", start_order={"group": 0, "delay_seconds": 5}),
        machine("app", start_order={"group": 1}),
        machine("web", start_order={"group": 2}),
    ]
    configuration_id = runtime.app.create_configuration(service_id, "shop", "", [{"name": "front"}], v1, "alice")
    cid = configuration_id.value.id
    runtime.app.add_machine(cid, machine("cache", start_order={"group": 1}), actor="alice")  # v2
    runtime.app.change_machine(cid, "app", machine("app", cpus=4, memory_mib=4096), actor="alice")  # v3
    deployment_id = runtime.app.deploy(cid, "int", actor="alice", configuration_version=1).value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    before = vm_config(reader, deployment_id)
    runtime.app.upgrade_deployment(deployment_id, 3, actor="bob", reason="patch 12")
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert (deployment.state, deployment.configuration_version) == ("deployed", 3), deployment.failure
    after = vm_config(reader, deployment_id)
    assert sorted(after) == ["app", "cache", "db", "web"]
    for untouched in ("db", "web"):
        assert after[untouched] == before[untouched]
    assert after["app"]["vm_id"] == before["app"]["vm_id"]
    assert after["app"]["modified"] > before["app"]["modified"]
    assert len(after["app"]["events"]) > len(before["app"]["events"])
    assert (after["app"]["cpus"], after["app"]["memory_mib"], after["app"]["power"]) == (4, 4096, True)
    cache = deployment.machine("cache")
    assert after["cache"]["power"]
    assert after["cache"]["macs"] == [n["mac"] for n in cache["addressing"]["macs"]]
    assert (cache["ip"] or "").startswith("10.61.0.")


def test_whole_deployment_power_on_vcsim(runtime: Runtime, reader: PyVmomiDriver) -> None:
    service_id = runtime.app.register_service("crm", "", stages("int"), actor="alice").value.id
    machines = [machine("db", start_order={"group": 0}), machine("web", start_order={"group": 1})]
    cid = runtime.app.create_configuration(service_id, "crm", "", [{"name": "front"}], machines, "alice").value.id
    deployment_id = runtime.app.deploy(cid, "int", actor="alice").value.id
    runtime.catch_up()
    runtime.app.power_deployment(deployment_id, "off", actor="bob", reason="weekend")
    runtime.catch_up()
    assert not any(vm.powered_on for vm in reader.find_vms(deployment_id))
    runtime.app.power_deployment(deployment_id, "on", actor="bob")
    runtime.catch_up()
    assert all(vm.powered_on for vm in reader.find_vms(deployment_id))
    assert {m["power"] for m in runtime.app.deployment(deployment_id).machines} == {"poweredOn"}


def test_a_worker_killed_mid_upgrade_on_vcsim_finishes_without_duplicates(vcsim: Vcsim, tmp_path: Path) -> None:
    vcsim.control("reset")
    try:
        with postgres_schema() as url:
            commands = runtime_for(url, vcenter=vcsim.driver())
            commands.app.import_templates(None, True, actor="admin")
            service_id = commands.app.register_service("big", "", stages("int"), actor="alice").value.id
            v1 = [machine(f"m{i:02d}") for i in range(6)]
            cid = commands.app.create_configuration(service_id, "big", "", [{"name": "front"}], v1, "alice").value.id
            v2 = [
                *[machine(f"m{i:02d}", cpus=4) for i in range(2)],  # resized
                *[machine(f"m{i:02d}") for i in range(2, 4)],  # kept; m04, m05 removed
                *[machine(f"n{i:02d}") for i in range(8)],  # added
            ]
            commands.app.revise_configuration(cid, {"machines": v2}, actor="alice")
            deployment_id = commands.app.deploy(cid, "int", actor="alice", configuration_version=1).value.id
            commands.catch_up()
            first = commands.app.deployment(deployment_id)
            assert first.state == "deployed", first.failure
            # Each vCenter task now takes 150 ms, so the kill lands in the middle of the upgrade.
            for method in ("CloneVM_Task", "ReconfigVM_Task", "PowerOnVM_Task"):
                vcsim.control("method-delay", method=method, ms=150)
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
            requested = commands.app.upgrade_deployment(deployment_id, 2, actor="bob").value.version
            deadline = time.monotonic() + 60
            while commands.app.deployment(deployment_id).version < requested + 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            mid = commands.app.deployment(deployment_id)
            assert mid.state == "upgrading", (mid.state, mid.failure, (tmp_path / "worker.log").read_text()[-2000:])
            restarted = subprocess.Popen(command, env=env, stdout=log, stderr=log)
            try:
                deadline = time.monotonic() + 120
                while commands.app.deployment(deployment_id).state != "deployed" and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                restarted.terminate()
                restarted.wait(10)
            deployment = commands.app.deployment(deployment_id)
            assert (deployment.state, deployment.configuration_version) == ("deployed", 2), deployment.failure
            vms = commands.vcenter.find_vms(deployment_id)
            expected = sorted(m["name"] for m in v2)
            assert sorted(vm.machine or "" for vm in vms) == expected
            assert len({vm.name for vm in vms}) == len(expected)
            assert {vm.machine: vm.cpus for vm in vms if vm.machine in ("m00", "m01", "m02")} == {
                "m00": 4, "m01": 4, "m02": 2,
            }  # fmt: skip
            assert all(vm.powered_on for vm in vms)
            steps = Counter(type(e).__qualname__ for e in commands.app.repository.event_store.get(deployment_id))
            assert steps["Deployment.MachineReconfigured"] == 2
            assert steps["Deployment.MachineRemoved"] == 2
            assert steps["Deployment.MachineProvisioned"] == 6 + 8
            assert steps["Deployment.Upgraded"] == 1
            commands.close()
    finally:
        vcsim.control("reset")
