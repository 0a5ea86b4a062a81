"""Restore behind a fence with the pyvmomi driver against vcsim (`-ds 2 -pg 3`: LocalDS_1 is the
archive tier, DVS0 the fence's switch), on PostgreSQL: the restored machines run beside their live
source with the same IPs and MACs, their NICs backed by the restore's own port groups (as vCenter
reports them), a gateway with the NAT map; an unfenced restore over the live addresses fails naming
the clash."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from scripts.vcsim_harness import Vcsim
from scripts.vcsim_harness import start as start_vcsim
from tests.fencing import SWITCH, three_tier
from tests.support import postgres_schema, runtime_for


@pytest.fixture(scope="module")
def vcsim2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vcsim]:
    sim = start_vcsim(tmp_path_factory.mktemp("vcsim-fenced-restore") / "vcsim.log", "-pg", "3", "-ds", "2")
    yield sim
    sim.stop()


@pytest.fixture
def runtime(vcsim2: Vcsim) -> Iterator[Runtime]:
    vcsim2.control("reset")
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim2.driver(task_timeout=10))
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


def archived_production(runtime: Runtime) -> tuple[UUID, UUID]:
    source_id = runtime.app.deploy(three_tier(runtime), "prod", actor="alice").value.id
    runtime.catch_up()
    assert runtime.app.deployment(source_id).state == "deployed", runtime.app.deployment(source_id).failure
    archive_id = runtime.app.archive_now(source_id, actor="alice", consistency="snapshot").value.id
    runtime.catch_up()
    archive = runtime.app.archive(archive_id)
    assert archive.state == "complete", archive.failure
    return source_id, archive_id


def restore(runtime: Runtime, archive_id: UUID, fence: bool) -> dict[str, object]:
    runtime.app.restore_archive(archive_id, "test", fence, actor="bob")
    runtime.catch_up()
    runtime.catch_up()  # the deployment process tags the adopted VMs on Captured, written by the archive process
    (found,) = runtime.app.archive(archive_id).restores.values()
    return found


def test_a_fenced_restore_runs_beside_its_source_with_the_same_addresses_behind_its_gateway(runtime: Runtime) -> None:
    source_id, archive_id = archived_production(runtime)
    found = restore(runtime, archive_id, fence=True)
    assert found["state"] == "restored", found.get("failure")
    source = runtime.app.deployment(source_id)
    copy = runtime.app.deployment(UUID(str(found["deployment_id"])))
    assert source.state == "deployed"
    assert copy.state == "deployed"
    prefix = f"sk-{copy.id.hex[:12]}-"
    groups = {p.name: p for p in runtime.vcenter.list_portgroups(SWITCH) if p.name.startswith(prefix)}
    assert sorted(groups) == [f"{prefix}back", f"{prefix}front"]
    assert copy.fence is not None
    assert {groups[n["portgroup"]].vlan for n in copy.fence["networks"]} == {n["vlan"] for n in copy.fence["networks"]}
    for name in ("web", "app", "db"):
        ours, theirs = copy.machine(name), source.machine(name)
        assert ours["addressing"]["ip"] == theirs["addressing"]["ip"]
        nics = runtime.vcenter.vm_nics(ours["vm_id"])
        assert [n.mac for n in nics] == [n.mac for n in runtime.vcenter.vm_nics(theirs["vm_id"])]
        wanted = [groups[f"{prefix}{m['network']}"].key for m in ours["addressing"]["macs"]]
        assert [n.portgroup_key for n in nics] == wanted
    vms = {vm.machine: vm for vm in runtime.vcenter.find_vms(copy.id)}
    assert vms["_fence-gateway"].powered_on
    assert all(vms[m].powered_on for m in ("web", "app", "db"))
    assert all(vm.powered_on for vm in runtime.vcenter.find_vms(source_id))
    gateway_nics = [n.portgroup_key for n in runtime.vcenter.vm_nics(vms["_fence-gateway"].vm_id)]
    assert gateway_nics[:2] == [groups[n["portgroup"]].key for n in copy.fence["networks"]]
    nat = copy.fence["nat"]
    assert {n["internal_ip"] for n in nat} == {source.machine(m)["addressing"]["ip"] for m in ("web", "app", "db")}
    assert all(n["external_ip"] for n in nat)


def test_an_unfenced_restore_beside_its_source_fails_naming_the_clash(runtime: Runtime) -> None:
    _, archive_id = archived_production(runtime)
    found = restore(runtime, archive_id, fence=False)
    assert found["state"] == "failed"
    assert "MAC" in str(found["failure"])
