"""Drift detection against vcsim (pyvmomi driver, PostgreSQL): memory changed behind Stagekeeper's
back is found within one cycle, revert restores it, adopt records a configuration version with the
new memory, a deleted VM is drift, a tagged VM unknown to the history is an orphan."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from scripts.vcsim_harness import Vcsim
from tests.support import machine, postgres_schema, runtime_for, stages

POOL = {"cidr": "10.71.0.0/24", "gateway": "10.71.0.1", "dns": [], "first": "10.71.0.10"}


@pytest.fixture
def runtime(vcsim: Vcsim) -> Iterator[Runtime]:
    vcsim.control("reset")
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim.driver(task_timeout=5))
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


@pytest.fixture
def behind_its_back(vcsim: Vcsim) -> Iterator[PyVmomiDriver]:
    """Another vCenter session: an administrator changing VMs in vCenter itself."""
    driver = vcsim.driver()
    yield driver
    driver.close()


def deployed(runtime: Runtime) -> tuple[UUID, UUID]:
    service_id = runtime.app.register_service("shop", "", stages("int"), actor="alice").value.id
    runtime.app.update_stage(service_id, "int", {"ip_pools": [POOL]}, actor="alice")
    configuration_id = runtime.app.create_configuration(
        service_id, "shop", "", [{"name": "front"}], [machine("db"), machine("web")], "alice"
    ).value.id
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return configuration_id, deployment_id


def open_drift(runtime: Runtime, deployment_id: UUID) -> dict[str, Any]:
    return {f"{d['machine']}.{d['field']}": d for d in runtime.app.deployment(deployment_id).view()["drift"]}


def test_a_fresh_deployment_on_vcsim_shows_no_drift(runtime: Runtime) -> None:
    _, deployment_id = deployed(runtime)
    report = runtime.drift_check.run_cycle()
    assert report.deployments == 1
    assert open_drift(runtime, deployment_id) == {}


def test_memory_changed_in_vcenter_is_found_in_one_cycle_and_revert_restores_it(
    runtime: Runtime, behind_its_back: PyVmomiDriver
) -> None:
    _, deployment_id = deployed(runtime)
    db = str(runtime.app.deployment(deployment_id).machine("db")["vm_id"])
    behind_its_back.power_off(db)
    behind_its_back.reconfigure(db, 2, 3072, ())
    behind_its_back.power_on(db)
    runtime.drift_check.run_cycle()
    found = open_drift(runtime, deployment_id)
    assert set(found) == {"db.memory_mib"}
    assert (found["db.memory_mib"]["expected"], found["db.memory_mib"]["actual"]) == (2048, 3072)
    runtime.app.revert_drift(deployment_id, "db.memory_mib", actor="bob", reason="unplanned change")
    runtime.catch_up()
    assert behind_its_back.managed_vms()[0].memory_mib in (2048, 3072)
    assert {o.vm_id: o.memory_mib for o in behind_its_back.managed_vms()}[db] == 2048
    assert behind_its_back.power_state(db) == "poweredOn"
    runtime.drift_check.run_cycle()
    assert open_drift(runtime, deployment_id) == {}


def test_adopting_memory_changed_in_vcenter_makes_a_configuration_version(
    runtime: Runtime, behind_its_back: PyVmomiDriver
) -> None:
    configuration_id, deployment_id = deployed(runtime)
    web = str(runtime.app.deployment(deployment_id).machine("web")["vm_id"])
    behind_its_back.power_off(web)
    behind_its_back.reconfigure(web, 2, 4096, ())
    behind_its_back.power_on(web)
    runtime.drift_check.run_cycle()
    runtime.app.adopt_drift(deployment_id, "web.memory_mib", actor="bob", reason="the load test needs it")
    configuration = runtime.app.configuration(configuration_id)
    assert configuration.machine("web")["memory_mib"] == 4096
    assert runtime.app.deployment(deployment_id).configuration_version == configuration.version
    runtime.drift_check.run_cycle()
    assert open_drift(runtime, deployment_id) == {}


def test_a_vm_deleted_in_vcenter_is_drift_and_a_stray_tagged_vm_an_orphan(
    runtime: Runtime, behind_its_back: PyVmomiDriver
) -> None:
    _, deployment_id = deployed(runtime)
    web = str(runtime.app.deployment(deployment_id).machine("web")["vm_id"])
    behind_its_back.power_off(web)
    behind_its_back.destroy(web)
    db = str(runtime.app.deployment(deployment_id).machine("db")["vm_id"])
    behind_its_back.tag_vm(db, UUID(int=5), "db")  # retagged by hand: now unknown to the history
    runtime.drift_check.run_cycle()
    found = open_drift(runtime, deployment_id)
    assert found["web.vm"]["actual"] is None
    assert set(found) == {"web.vm"}  # db's VM is still there (its id is what the history holds)
    # vcsim keeps the VMs of earlier tests (their histories were other schemas): orphans too.
    orphans = {o["vm_id"]: o["reason"] for o in runtime.app.drift_orphans()}
    assert orphans[db] == "no such deployment in the history"
    assert not {str(o) for o in orphans} & {str(m["vm_id"]) for m in runtime.app.deployment(deployment_id).machines} - {
        db
    }
