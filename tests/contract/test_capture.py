"""Capture over the simulated vCenter, on every persistence: a configuration version and an adopted
deployment in one write, claims and refusals, tagging, letting go and destroying."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from api.routes.capture import holder_in
from domain.errors import ConflictError, NotFoundError, ValidationError
from tests.support import ROOT_POOL, machine, stages

PROD_POOL = f"{ROOT_POOL}/prod-pool"


def existing(vcenter: SimulatedVCenter, name: str, mac: str, ip: str | None = None, **details: Any) -> str:
    nics = [{"network": "VM Network", "mac": mac, "adapter": "vmxnet3"}]
    return vcenter.add_existing_vm(name, ROOT_POOL, cpus=4, memory_mib=8192, nics=nics, ip=ip, **details)


@pytest.fixture
def service_id(runtime: Runtime) -> UUID:
    return runtime.app.register_service("erp", "", stages("test", "prod"), actor="alice").value.id


@pytest.fixture
def erp(vcenter: SimulatedVCenter) -> list[str]:
    return [
        existing(vcenter, "ERP_DB", "00:0c:29:00:00:01", "10.1.0.5", hostname="erp-db.example.com"),
        existing(vcenter, "ERP_APP", "00:0c:29:00:00:02", disks=[{"capacity_kib": 20 * 1048576 + 1}]),
    ]


def captured(runtime: Runtime, service_id: UUID, vms: list[str], name: str = "erp") -> UUID:
    outcome = runtime.app.capture(service_id, "prod", name, actor="alice", vms=vms, reason="adopt production")
    assert outcome.value.deployment is not None
    runtime.catch_up()
    return outcome.value.deployment.id


def test_a_capture_records_the_vms_as_they_are_and_tags_them(
    runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID, erp: list[str]
) -> None:
    before = {vm.vm_id: vm for vm in vcenter.all_vms()}
    deployment_id = captured(runtime, service_id, ["ERP_DB", erp[1]])
    deployment = runtime.app.deployment(deployment_id)
    assert (deployment.state, deployment.stage, deployment.captured) == ("deployed", "prod", True)
    configuration = runtime.app.configuration(deployment.configuration_id)
    assert configuration.networks == [{"name": "VM Network", "description": "port group VM Network"}]
    db = configuration.machine("erp-db")
    assert (db["cpus"], db["memory_mib"], db["nics"], db["disks"]) == (
        4,
        8192,
        [{"network": "VM Network"}],
        [{"size_gib": 1}],
    )
    assert db["customization"] == {"os": "linux", "hostname": "erp-db", "ip_mode": "dhcp"}
    assert db["captured"]["nics"][0]["mac"] == "00:0c:29:00:00:01"
    assert configuration.machine("erp-app")["disks"] == [{"size_gib": 21}]  # rounded up; exact size in captured
    by_name = {m["name"]: m for m in deployment.machines}
    assert (by_name["erp-db"]["vm_id"], by_name["erp-db"]["ip"], by_name["erp-db"]["power"]) == (
        erp[0],
        "10.1.0.5",
        "poweredOn",
    )
    # Nothing changed on the VMs but the tags; the process manager recorded one step per VM.
    for vm in vcenter.all_vms():
        assert vm.deployment_id == deployment_id
        assert (vm.powered_on, vm.cpus, vm.memory_mib, vm.macs) == (
            before[vm.vm_id].powered_on,
            before[vm.vm_id].cpus,
            before[vm.vm_id].memory_mib,
            before[vm.vm_id].macs,
        )
    as_captured = runtime.app.deployment(deployment_id, version=2)  # Requested, Captured: one write
    assert {m["name"]: m["tagged"] for m in as_captured.machines} == {"erp-app": False, "erp-db": False}
    assert all(m["tagged"] for m in deployment.machines)
    assert sorted(vm.machine or "" for vm in vcenter.find_vms(deployment_id)) == ["erp-app", "erp-db"]
    assert runtime.app.service(service_id).live_deployments("prod") == [str(deployment_id)]


def test_a_dry_run_answers_everything_and_records_nothing(
    runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID, erp: list[str]
) -> None:
    head = runtime.app.head()
    result = runtime.app.capture(service_id, "prod", "erp", actor="alice", vms=erp, dry_run=True).value
    assert result.deployment is None
    assert result.refusals == []
    assert [m["name"] for m in result.configuration["machines"]] == ["erp-app", "erp-db"]
    assert {(c["kind"], c["name"]) for c in result.claims} == {
        ("vm", erp[0]), ("vm", erp[1]), ("mac", "00:0c:29:00:00:01"), ("mac", "00:0c:29:00:00:02"), ("ip", "10.1.0.5"),
    }  # fmt: skip
    assert runtime.app.head() == head
    assert all(vm.deployment_id is None for vm in vcenter.all_vms())


def test_capturing_a_managed_vm_again_is_refused_naming_its_deployment(
    runtime: Runtime, service_id: UUID, erp: list[str]
) -> None:
    deployment_id = captured(runtime, service_id, erp)
    with pytest.raises(ConflictError, match=f"ERP_DB \\({erp[0]}\\): Stagekeeper deployment {deployment_id}"):
        runtime.app.capture(service_id, "test", "again", actor="alice", vms=["ERP_DB"])


def test_before_tagging_the_claims_alone_refuse_a_second_capture(
    runtime: Runtime, service_id: UUID, erp: list[str]
) -> None:
    first = runtime.app.capture(service_id, "prod", "erp", actor="alice", vms=erp).value.deployment
    assert first is not None
    runtime.projection_follower.catch_up()  # the read model, not the process manager: no tags yet
    refusals = runtime.app.capture(
        service_id, "test", "again", actor="alice", vms=[erp[0]], dry_run=True, holder=holder_in(runtime, None)
    ).value.refusals
    reasons = " ".join(r["reason"] for r in refusals)
    assert (
        f"VM {erp[0]} of VM ERP_DB (machine 'erp-db') is held by machine 'erp-db' of deployment {first.id}" in reasons
    )
    assert "MAC 00:0c:29:00:00:01 on network 'VM Network'" in reasons
    assert "IP 10.1.0.5" in reasons


def test_an_address_another_deployment_holds_is_refused_naming_both(
    runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID
) -> None:
    service = runtime.app.register_service("hr", "", stages("int", pools="hr-"), actor="alice").value.id
    runtime.app.update_stage(service, "int", {"ip_pools": [{"cidr": "10.9.0.0/24", "gateway": "10.9.0.1"}]}, "alice")
    configuration_id = runtime.app.create_configuration(
        service, "hr", "", [{"name": "VM Network"}], [{**machine("web1"), "nics": [{"network": "VM Network"}]}], "alice"
    ).value.id
    built = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    web1 = runtime.app.deployment(built).machine("web1")
    existing(vcenter, "LEGACY", web1["addressing"]["macs"][0]["mac"], web1["addressing"]["ip"])
    with pytest.raises(ConflictError) as refused:
        runtime.app.capture(
            service_id, "prod", "legacy", actor="alice", vms=["LEGACY"], holder=holder_in(runtime, None)
        )
    message = refused.value.message
    assert (
        f"MAC {web1['addressing']['macs'][0]['mac']} on network 'VM Network' of VM LEGACY (machine 'legacy')" in message
    )
    assert f"is held by machine 'web1' of deployment {built} ('hr' in stage 'int'" in message
    assert f"IP {web1['addressing']['ip']} of VM LEGACY" in message
    assert runtime.app.service(service_id).live_deployments("prod") == []


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        ({"is_template": True}, "it is a template"),
        ({"snapshots": ["before-upgrade"]}, "it has snapshots (before-upgrade)"),
        (
            {"disks": [{"label": "Hard disk 1", "capacity_kib": 1048576, "delta_chain": ["[LocalDS_0] X/X.vmdk"]}]},
            "its disk 'Hard disk 1' ([LocalDS_0] X/X-000001.vmdk) runs on a delta chain of 1 parent disk(s)",
        ),
    ],
)
def test_templates_and_snapshot_chains_are_refused_saying_which(
    runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID, details: dict[str, Any], reason: str
) -> None:
    if "disks" in details:
        details["disks"][0]["file"] = "[LocalDS_0] X/X-000001.vmdk"
    existing(vcenter, "X", "00:0c:29:00:00:09", **details)
    dry = runtime.app.capture(service_id, "prod", "x", actor="alice", vms=["X"], dry_run=True).value
    assert [r["vm"] for r in dry.refusals] == ["X"]
    assert reason in dry.refusals[0]["reason"]
    with pytest.raises(ConflictError, match="capture refused: X"):
        runtime.app.capture(service_id, "prod", "x", actor="alice", vms=["X"])


def test_two_vms_sharing_a_mac_on_one_network_are_refused(
    runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID
) -> None:
    existing(vcenter, "A", "00:0c:29:33:34:38")
    existing(vcenter, "B", "00:0c:29:33:34:38")
    dry = runtime.app.capture(service_id, "prod", "ab", actor="alice", vms=["A", "B"], dry_run=True).value
    assert [r["reason"] for r in dry.refusals] == [
        "its MAC 00:0c:29:33:34:38 on network 'VM Network' is also the MAC of VM A in this capture"
    ]


def test_letting_go_untags_and_leaves_the_vms_running_and_releases_the_claims(
    runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID, erp: list[str]
) -> None:
    deployment_id = captured(runtime, service_id, erp)
    runtime.app.undeploy(deployment_id, actor="alice", reason="hand back")
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert (deployment.state, deployment.letting_go) == ("undeployed", True)
    assert {m["state"] for m in deployment.machines} == {"released"}
    assert all(vm.powered_on and vm.deployment_id is None for vm in vcenter.all_vms())
    assert len(vcenter.all_vms()) == 2
    # Every claim was released: the same VMs can be captured again.
    again = runtime.app.capture(service_id, "prod", "erp", actor="alice", vms=erp, dry_run=True).value
    assert again.refusals == []
    assert again.configuration["version"] == 2


def test_destroy_vms_true_destroys_the_captured_vms(
    runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID, erp: list[str]
) -> None:
    deployment_id = captured(runtime, service_id, erp)
    with pytest.raises(ValidationError, match="destroy_vms must be true or false"):
        runtime.app.undeploy(deployment_id, actor="alice", destroy_vms="yes")
    runtime.app.undeploy(deployment_id, actor="alice", destroy_vms=True)
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "undeployed"
    assert vcenter.all_vms() == []


def test_letting_go_is_for_captured_deployments_only(runtime: Runtime, service_id: UUID) -> None:
    configuration_id = runtime.app.create_configuration(
        service_id, "built", "", [{"name": "front"}], [machine("web1")], "alice"
    ).value.id
    built = runtime.app.deploy(configuration_id, "test", actor="alice").value.id
    runtime.catch_up()
    with pytest.raises(ValidationError, match="lets go of captured VMs only") as refused:
        runtime.app.undeploy(built, actor="alice", destroy_vms=False)
    assert refused.value.field == "destroy_vms"


def test_capture_into_an_existing_configuration_records_a_new_version(
    runtime: Runtime, service_id: UUID, erp: list[str]
) -> None:
    configuration_id = runtime.app.create_configuration(
        service_id, "erp", "", [{"name": "front"}], [machine("web1")], "alice"
    ).value.id
    deployment_id = captured(runtime, service_id, [erp[0]])
    deployment = runtime.app.deployment(deployment_id)
    assert (deployment.configuration_id, deployment.configuration_version) == (configuration_id, 2)
    assert [m["name"] for m in runtime.app.configuration(configuration_id).machines] == ["erp-db"]
    assert [m["name"] for m in runtime.app.configuration(configuration_id, version=1).machines] == ["web1"]


def test_bad_selections_are_refused_naming_the_field(runtime: Runtime, service_id: UUID, erp: list[str]) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "vms"),
        ({"vms": erp, "folder": "/DC0/vm"}, "folder"),
        ({"vms": []}, "vms"),
        ({"vms": ["x"] * 101}, "vms"),
        ({"vms": ["bad\x00name"]}, "vms[0]"),
        ({"folder": "/DC0/host/x"}, "folder"),
        ({"resource_pool": "not-a-path"}, "resource_pool"),
        ({"vms": erp, "dry_run": "yes"}, "dry_run"),
    ]
    for given, field in cases:
        with pytest.raises(ValidationError) as refused:
            runtime.app.capture(service_id, "prod", "erp", actor="alice", **given)
        assert refused.value.field == field, given
    with pytest.raises(NotFoundError, match="no-such-vm"):
        runtime.app.capture(service_id, "prod", "erp", actor="alice", vms=["no-such-vm"])
    with pytest.raises(NotFoundError):
        runtime.app.capture(service_id, "nowhere", "erp", actor="alice", vms=erp)
    with pytest.raises(ValidationError, match="configuration"):
        runtime.app.capture(service_id, "prod", "", actor="alice", vms=erp)


def test_folders_and_pools_capture_every_vm_inside(
    runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID, erp: list[str]
) -> None:
    by_pool = runtime.app.capture(service_id, "prod", "erp", actor="alice", resource_pool=ROOT_POOL, dry_run=True)
    assert sorted(m["vm_name"] for m in (c["captured"] for c in by_pool.value.configuration["machines"])) == [
        "ERP_APP", "ERP_DB",
    ]  # fmt: skip
    by_folder = runtime.app.capture(service_id, "prod", "erp", actor="alice", folder="/DC0/vm", dry_run=True)
    assert len(by_folder.value.configuration["machines"]) == 2


def test_two_concurrent_captures_of_one_vm_give_one_deployment(
    runtime: Runtime, service_id: UUID, erp: list[str]
) -> None:
    outcomes: list[object] = []

    def capture(stage: str) -> None:
        try:
            outcomes.append(runtime.app.capture(service_id, stage, f"erp-{stage}", actor="alice", vms=[erp[0]]))
        except ConflictError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=capture, args=(stage,)) for stage in ("test", "prod")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["ConflictError", "Outcome"]
    service = runtime.app.service(service_id)
    assert len(service.live_deployments("test")) + len(service.live_deployments("prod")) == 1
