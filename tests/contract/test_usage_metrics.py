"""The metrics read model and the collector, on every store; `sample_usage` on both drivers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from adapters.vcenter.simulated_usage import DATASTORE, GIB
from domain.ports import CloneSpec, VCenterDriver
from projections.metrics import COARSE, FINE, average
from scripts.vcsim_harness import Vcsim
from tests.support import THREE_TIER, FixedClock, stages

ROOT = "/DC0/host/DC0_C0/Resources"
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def deployed(runtime: Runtime) -> str:
    service = runtime.app.register_service("payroll", "", stages("int", "test"), actor="a").value
    configuration = runtime.app.create_configuration(
        service.id, "p", "", [{"name": "front"}], THREE_TIER, actor="a"
    ).value
    runtime.app.deploy(configuration.id, "int", actor="alice")
    runtime.catch_up()
    return str(service.id)


def clock(runtime: Runtime) -> FixedClock:
    assert isinstance(runtime.clock, FixedClock)
    runtime.clock.current = START
    return runtime.clock


def test_samples_land_in_five_minute_and_hourly_buckets_as_averages(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    service_id = deployed(runtime)
    fake = clock(runtime)
    first = runtime.usage.collector.collect_once()
    assert (first.vms, first.calls) == (4, 1)
    # Power one VM off: the second sample of the same 5-minute bucket uses less.
    vm_id = next(vm.vm_id for vm in vcenter._vms.values() if vm.machine == "db1")
    vcenter.power_off(vm_id)
    fake.advance(minutes=2)
    runtime.usage.collector.collect_once()
    metrics = runtime.usage.metrics
    [fine] = metrics.buckets(FINE, START, START + timedelta(minutes=5), service_id=service_id)
    assert int(fine["samples"]) == 2
    # Powered on: a tenth of 2 vCPUs at 2,000 MHz each = 400 MHz per VM; db1 off in the second sample.
    assert average(fine, "cpu_mhz") == (4 * 400 + 3 * 400) / 2
    assert average(fine, "committed_bytes") == (16 * 3 + 40) * GIB
    fake.advance(minutes=10)
    runtime.usage.collector.collect_once()
    fine_rows = metrics.buckets(FINE, START, START + timedelta(hours=1), service_id=service_id)
    assert [int(r["samples"]) for r in fine_rows] == [2, 1]
    [hourly] = metrics.buckets(COARSE, START, START + timedelta(hours=1), service_id=service_id)
    assert int(hourly["samples"]) == 3
    assert average(hourly, "cpu_mhz") == (1600 + 1200 + 1200) / 3
    [datastore] = metrics.datastore_buckets(COARSE, START, START + timedelta(hours=1))
    assert datastore["datastore"] == DATASTORE
    assert average(datastore, "capacity_bytes") > average(datastore, "free_bytes") > 0


def test_old_points_are_dropped_after_their_retention(runtime: Runtime) -> None:
    service_id = deployed(runtime)
    fake = clock(runtime)
    runtime.usage.collector.collect_once()
    fake.advance(days=8)
    runtime.usage.collector.collect_once()
    metrics = runtime.usage.metrics
    span = (START - timedelta(days=1), fake.now() + timedelta(hours=1))
    assert len(metrics.buckets(FINE, *span, service_id=service_id)) == 1  # the first 5-minute point is gone
    assert len(metrics.buckets(COARSE, *span, service_id=service_id)) == 2  # hourly points stay a year
    fake.advance(days=366)
    runtime.usage.collector.collect_once()
    assert len(metrics.buckets(COARSE, START, fake.now(), service_id=service_id)) == 1


def test_vms_of_unknown_deployments_are_left_out(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    clock(runtime)
    vcenter.clone(CloneSpec("stray", "tpl-ubuntu-2404", ROOT, False, 1, 1024, uuid4(), "m"))
    assert runtime.usage.collector.collect_once().vms == 0


@pytest.fixture(params=["simulated", "pyvmomi"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VCenterDriver]:
    if request.param == "simulated":
        driver: VCenterDriver = SimulatedVCenter(state_file=tmp_path / "inventory.json")
    else:
        sim: Vcsim = request.getfixturevalue("vcsim")
        sim.control("reset")
        driver = sim.driver()
    yield driver
    driver.close()


def test_sample_usage_reads_tagged_vms_and_every_datastore(driver: VCenterDriver) -> None:
    deployment = uuid4()
    made = driver.clone(
        CloneSpec(f"sk-usage-{deployment.hex[:6]}", "tpl-ubuntu-2404", ROOT, False, 2, 2048, deployment, "web1")
    )
    driver.power_on(made.vm_id)
    sample = driver.sample_usage()
    [vm] = [v for v in sample.vms if v.deployment_id == deployment]
    assert (vm.vm_id, vm.machine, vm.powered_on) == (made.vm_id, "web1", True)
    assert vm.datastore is not None
    assert vm.datastore.startswith("LocalDS_")
    assert all(v.deployment_id is not None for v in sample.vms)  # untagged VMs and templates are not sampled
    names = {d.name for d in sample.datastores}
    assert vm.datastore in names
    assert all(d.capacity_bytes >= d.free_bytes >= 0 and d.capacity_bytes > 0 for d in sample.datastores)
    # One retrieval: creating and destroying the view, and one page (vcsim and the simulation hold < 1,000).
    assert sample.calls <= 3
    driver.power_off(made.vm_id)
    driver.destroy(made.vm_id)
    assert not [v for v in driver.sample_usage().vms if v.deployment_id == deployment]


class Unreachable:
    def sample_usage(self) -> None:
        raise ConnectionRefusedError("vCenter is down")


def test_a_failed_cycle_is_reported_and_the_next_cycle_tries_again(runtime: Runtime) -> None:
    from adapters.usage import UsageCollector

    driver: Any = Unreachable()
    collector = UsageCollector(driver, runtime.usage.metrics, runtime.store, runtime.clock, 0.01, lambda: True)
    collector.start()
    try:
        deadline = time.monotonic() + 5
        while not collector.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert collector.errors == {"usage-collector": "ConnectionRefusedError: vCenter is down"}
        collector.driver = runtime.vcenter  # vCenter answers again
        while collector.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert collector.errors == {}
        assert collector.last is not None
    finally:
        collector.stop()


def test_only_the_leader_samples(runtime: Runtime) -> None:
    from adapters.usage import UsageCollector

    calls: list[int] = []

    class Counting:
        def sample_usage(self) -> Any:
            calls.append(1)
            return runtime.vcenter.sample_usage()

    driver: Any = Counting()
    collector = UsageCollector(driver, runtime.usage.metrics, runtime.store, runtime.clock, 0.01, lambda: False)
    collector.start()
    time.sleep(0.1)
    collector.stop()
    assert calls == []
