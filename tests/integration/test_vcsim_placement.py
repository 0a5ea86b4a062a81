"""Placement on vcsim with two clusters of two hosts and two datastores (`-cluster 2 -host 2 -ds 2`),
on PostgreSQL: anti-affinity puts web1 and web2 on different hosts, read back from each VM's
runtime.host; rebalancing, as a dry run and for real. vcsim's PlaceVm answers a random host (the
product overrules it when it breaks a rule). vcsim 0.24.2's clone ignores the host it is given; the
harness puts the clone on it, as vCenter does (scripts/vcsim/clonehost.go), and can be told not to
(`clone-host?honor=0`): then the process manager relocates each clone that landed elsewhere. Both
ways are deployed here; what vCenter reports is what these tests check."""

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


def clone_on_host(sim: Vcsim, host: str) -> str:
    """Clone a template with pyvmomi on `host` (named in the clone's RelocateSpec): the clone's runtime.host."""
    from pyVmomi import vim

    driver = sim.driver()
    try:
        content = driver.session.content
        template = next(vm for vm, p in driver._vms() if p.get("name") == "tpl-ubuntu-2404")
        pool = driver._pool("/DC0/host/DC0_C0/Resources")
        target = next(h for h in pool.owner.host if h.name == host)
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(pool=pool, host=target), powerOn=False, template=False)
        datacenter = content.rootFolder.childEntity[0]
        task = template.CloneVM_Task(folder=datacenter.vmFolder, name=f"on-{host}-{id(spec)}", spec=spec)
        clone = driver.session.wait(task, "clone")
        return str(clone.runtime.host.name)
    finally:
        driver.close()


def test_the_harness_clones_onto_the_named_host_unless_told_not_to(two_clusters: Vcsim) -> None:
    two_clusters.control("reset")
    hosts = ["DC0_C0_H0", "DC0_C0_H1"]
    assert [clone_on_host(two_clusters, h) for h in hosts] == hosts
    two_clusters.control("clone-host", honor="0")
    try:
        landed = {clone_on_host(two_clusters, h) for h in hosts}
        assert len(landed) == 1  # vcsim's own way: both on the template's host
    finally:
        two_clusters.control("reset")


@pytest.mark.parametrize("clone_honors_host", [True, False], ids=["clone-on-host", "relocate-after-clone"])
def test_anti_affinity_puts_web1_and_web2_on_different_hosts(
    runtime: Runtime, two_clusters: Vcsim, clone_honors_host: bool
) -> None:
    if not clone_honors_host:
        # Clones land on the template's host: web1 and web2 end apart only if the process
        # manager relocates them after the clone (DomainPlacement.settle).
        two_clusters.control("clone-host", honor="0")
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
