"""Placement on vcsim with two clusters of two hosts and two datastores (`-cluster 2 -host 2 -ds 2`),
on PostgreSQL: anti-affinity puts web1 and web2 on different hosts, read back from each VM's
runtime.host; rebalancing, as a dry run and for real. vcsim's PlaceVm answers a random host (the
product overrules it when it breaks a rule) and a clone ignores the host it is given, so the
process manager relocates after the clone: what vCenter reports is what these tests check."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from scripts.vcsim_harness import Vcsim, start
from tests.support import machine, postgres_schema, runtime_for

C0_POOL = "/DC0/host/DC0_C0/Resources/shop-int"
C1_POOL = "/DC0/host/DC0_C1/Resources/shop-int"


@pytest.fixture(scope="module")
def two_clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vcsim]:
    sim = start(tmp_path_factory.mktemp("vcsim-placement") / "vcsim.log", "-cluster", "2", "-host", "2", "-ds", "2")
    yield sim
    sim.stop()


@pytest.fixture
def runtime(two_clusters: Vcsim) -> Iterator[Runtime]:
    two_clusters.control("reset")
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=two_clusters.driver())
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


def runtime_host(runtime: Runtime, vm_id: str) -> str:
    """The VM's runtime.host as vCenter has it, read with pyvmomi directly."""
    driver = runtime.vcenter
    assert isinstance(driver, PyVmomiDriver)
    return str(driver.vm_ref(vm_id).runtime.host.name)


def deploy(runtime: Runtime, extra_pools: list[str]) -> UUID:
    stage = {"name": "int", "resource_pool": C0_POOL, "extra_pools": extra_pools}
    service_id = runtime.app.register_service("shop", "", [stage], actor="alice").value.id
    machines = [machine("web1", memory_mib=512), machine("web2", memory_mib=512), machine("db1", memory_mib=512)]
    configuration_id = runtime.app.create_configuration(
        service_id, "c", "", [{"name": "front"}], machines, actor="alice"
    ).value.id
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    return deployment_id


def test_anti_affinity_puts_web1_and_web2_on_different_hosts(runtime: Runtime) -> None:
    deployment_id = deploy(runtime, [C1_POOL])
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed", deployment.failure
    web1, web2 = deployment.machine("web1"), deployment.machine("web2")
    assert runtime_host(runtime, web1["vm_id"]) != runtime_host(runtime, web2["vm_id"])
    by_id = {vm.vm_id: vm for vm in runtime.vcenter.find_vms(deployment_id)}
    for m in deployment.machines:
        placement = m["placement"]
        assert runtime_host(runtime, m["vm_id"]) == placement["host"]
        assert by_id[m["vm_id"]].resource_pool == placement["resource_pool"]
        assert placement["host"].startswith(placement["cluster"] + "_H")
        assert placement["datastore"] in ("LocalDS_0", "LocalDS_1")
        assert runtime.vcenter.vm_location(m["vm_id"]).datastore == placement["datastore"]


def test_rebalance_dry_run_then_for_real_separates_a_tier(runtime: Runtime) -> None:
    deployment_id = deploy(runtime, [])
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed", deployment.failure
    web1, web2 = deployment.machine("web1"), deployment.machine("web2")
    runtime.vcenter.relocate_to_host(web2["vm_id"], runtime_host(runtime, web1["vm_id"]), None)
    assert runtime_host(runtime, web1["vm_id"]) == runtime_host(runtime, web2["vm_id"])

    plan = runtime.app.rebalance_deployment(deployment_id, True, actor="alice", reason="check").value
    assert len(plan.moves) == 1
    assert runtime_host(runtime, web1["vm_id"]) == runtime_host(runtime, web2["vm_id"])  # nothing moved

    runtime.app.rebalance_deployment(deployment_id, False, actor="alice", reason="spread the web tier")
    runtime.catch_up()
    after = runtime.app.deployment(deployment_id)
    assert after.rebalance_work is None
    assert runtime_host(runtime, web1["vm_id"]) != runtime_host(runtime, web2["vm_id"])
    moved = plan.moves[0]
    assert runtime_host(runtime, after.machine(moved.machine)["vm_id"]) == moved.host
    assert runtime.app.rebalance_deployment(deployment_id, True, actor="alice").value.moves == []
