"""What VMs become when captured (domain/capture.py) and who may capture, without I/O."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import uuid4

import pytest

from domain.capture import MAX_CAPTURE_VMS, plan_capture
from domain.deployment import Deployment
from domain.descriptions import DiskDescription, NicDescription, VmDescription
from domain.errors import InvalidTransitionError, ValidationError
from domain.permissions import Caller, can_capture


def vm(name: str, **changes: Any) -> VmDescription:
    base = VmDescription(
        vm_id=f"vm-{name}", name=name, guest_id="windows9Server64Guest", os_family="windows", cpus=2,
        memory_mib=4095, annotation="payroll db\nowner: finance", folder="/DC0/vm/erp",
        resource_pool="/DC0/host/DC0_C0/Resources/erp", host="esx-1", datastores=("LocalDS_0",),
        is_template=False, powered_on=False,
        disks=(DiskDescription("Hard disk 1", 40 * 1048576, "eager-zeroed-thick", "[LocalDS_0] a.vmdk", "LocalDS_0"),),
        nics=(NicDescription("Network adapter 1", "VLAN 10 / prod", "00:50:56:aa:00:01", "vmxnet3"),),
        hostname="payroll-database-primary.corp.example",
    )  # fmt: skip
    return replace(base, **changes)


def test_names_follow_the_vms_and_port_groups_within_the_configuration_rules() -> None:
    plan = plan_capture([vm("PAYROLL_DB_01"), vm("payroll db 01", vm_id="vm-2", nics=())])
    assert plan.refusals == []
    assert [m["name"] for m in plan.machines] == ["payroll-db-01", "payroll-db-01-2"]
    assert plan.networks == [{"name": "VLAN 10 - prod", "description": "port group VLAN 10 / prod"}]
    first = plan.machines[0]
    assert first["nics"] == [{"network": "VLAN 10 - prod"}]
    assert first["captured"]["nics"][0]["port_group"] == "VLAN 10 / prod"
    assert first["memory_mib"] == 4096  # the configuration's rule: a multiple of 4
    assert first["disks"] == [{"size_gib": 40}]
    # NetBIOS names are 15 characters at most.
    assert first["customization"] == {"os": "windows", "hostname": "payroll-databas", "ip_mode": "dhcp"}
    assert plan.adopted[0]["power"] == "poweredOff"
    assert plan.adopted[0]["addressing"]["macs"] == [{"network": "VLAN 10 - prod", "mac": "00:50:56:aa:00:01"}]


def test_each_refusal_says_which_vm_and_why() -> None:
    plan = plan_capture(
        [
            vm("tpl", is_template=True),
            vm("snap", snapshots=tuple(f"s{i}" for i in range(7))),
            vm("huge", vm_id="vm-3", cpus=1000),
            vm("odd", annotation="bell\x07"),
        ]
    )
    reasons = {(r["vm"], r["reason"].split(":")[0].split(" (")[0]) for r in plan.refusals}
    assert ("tpl", "it is a template") in reasons
    assert ("snap", "it has snapshots") in reasons
    assert "s0, s1, s2, s3, s4, ..." in next(r["reason"] for r in plan.refusals if r["vm"] == "snap")
    assert ("huge", "it has 1000 vCPUs") in reasons
    assert any(r["vm"] == "odd" and "annotation must not contain control" in r["reason"] for r in plan.refusals)


def test_an_empty_or_oversized_selection_is_refused() -> None:
    with pytest.raises(ValidationError, match="holds no VM"):
        plan_capture([])
    with pytest.raises(ValidationError, match=f"at most {MAX_CAPTURE_VMS}"):
        plan_capture([vm(f"v{i}", vm_id=f"vm-{i}") for i in range(MAX_CAPTURE_VMS + 1)])


OWNER = {"id": "1", "role": "service-owner", "user": "olivia", "group": None, "stage": None}
OPERATOR = {"id": "2", "role": "stage-operator", "user": "olivia", "group": None, "stage": "prod"}
OTHER_OPERATOR = {"id": "3", "role": "stage-operator", "user": "oscar", "group": None, "stage": "prod"}
PROD = {"name": "prod", "restricted": True}
TEST = {"name": "test", "restricted": False}


@pytest.mark.parametrize(
    ("grants", "caller", "stage", "allowed"),
    [
        ([OWNER, OPERATOR], Caller("olivia"), PROD, True),
        ([OWNER], Caller("olivia"), PROD, False),  # owner only
        ([OWNER, OTHER_OPERATOR], Caller("oscar"), PROD, False),  # operator only
        ([], Caller("alice", is_admin=True), TEST, True),  # administrators alike
        ([], Caller("alice", is_admin=True), PROD, False),  # ... but a restricted stage wants the role
        ([{**OPERATOR, "user": "alice"}], Caller("alice", is_admin=True), PROD, True),
    ],
)
def test_capture_takes_an_owner_who_operates_the_stage(
    grants: list[dict[str, Any]], caller: Caller, stage: dict[str, Any], allowed: bool
) -> None:
    assert can_capture(grants, caller, stage) is allowed


def test_a_failed_captured_deployment_is_not_provisioned_again() -> None:
    plan = plan_capture([vm("ERP_DB")])
    deployment = Deployment(
        service_id=uuid4(), configuration_id=uuid4(), configuration_version=1, configuration_name="erp",
        stage="prod", resource_pool="/DC0/host/DC0_C0/Resources/prod", networks=plan.networks,
        machines=plan.machines, actor="alice", reason=None,
    )  # fmt: skip
    deployment.adopt(plan.adopted, "alice", None)
    assert deployment.state == "deployed"
    deployment.request_move("test", "/DC0/host/DC0_H0/Resources/test", "demote", "alice", None)
    deployment.record_move_failure("InsufficientResourcesFault (moving back also failed)", False, "stagekeeper")
    assert deployment.state == "failed"
    # Provisioning clones from templates; failing, it would destroy the adopted VMs.
    with pytest.raises(InvalidTransitionError, match="captured deployment cannot be provisioned again"):
        deployment.retry("alice", None)
    deployment.request_let_go("alice", "hand back")
    assert (deployment.state, deployment.letting_go) == ("undeploying", True)
