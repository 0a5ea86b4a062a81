"""Drift, previews and verification rules as pure functions: given a deployment and what vCenter
shows, which differences are recorded, resolved and adopted; what a preview says; how checks judge."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain import drift, preview, verification
from domain.commands.drift import apply_check, parse_drift_key
from domain.deployment import Deployment
from domain.errors import ValidationError
from domain.observations import VmObservation
from tests.support import machine

POOL = "/DC0/host/C/Resources/int"


def deployed(**web: Any) -> Deployment:
    deployment = Deployment(
        service_id=uuid4(), configuration_id=uuid4(), configuration_version=1, configuration_name="c",
        stage="int", resource_pool=POOL, networks=[{"name": "front"}],
        machines=[machine("web", **web), machine("db")], actor="alice", reason=None,
    )  # fmt: skip
    deployment.start_provisioning("pm")
    for name in ("web", "db"):
        deployment.record_machine_provisioned(name, f"vm-{name}", f"id-{name}", "10.0.0.1", None, "pm")
    deployment.mark_deployed("pm")
    return deployment


def seen(deployment: Deployment, name: str, **changes: Any) -> VmObservation:
    found = VmObservation(
        vm_id=f"id-{name}", name=f"vm-{name}", deployment_id=deployment.id, machine=name, power="poweredOn",
        cpus=2, memory_mib=2048, disks_gib=(16,), networks=("front",), macs=(), resource_pool=POOL,
    )  # fmt: skip
    return replace(found, **changes)


def test_a_deployment_that_matches_has_no_differences() -> None:
    deployment = deployed()
    assert drift.differences(deployment, [seen(deployment, "web"), seen(deployment, "db")]) == []


def test_each_field_that_differs_is_a_difference_and_a_missing_vm_only_says_so() -> None:
    deployment = deployed(disks=[{"size_gib": 20}])
    found = drift.differences(
        deployment,
        [seen(deployment, "web", memory_mib=4096, power="poweredOff", disks_gib=(16, 8), resource_pool="/x")],
    )
    assert [(d.machine, d.field, d.expected, d.actual) for d in found] == [
        ("web", "power", "poweredOn", "poweredOff"),
        ("web", "memory_mib", 2048, 4096),
        ("web", "disks", [20], [16]),
        ("web", "resource_pool", POOL, "/x"),
        ("db", "vm", "id-db", None),
    ]


def test_a_difference_is_recorded_once_again_when_it_changes_and_resolved_when_gone() -> None:
    deployment = deployed()
    ok = [seen(deployment, "web"), seen(deployment, "db")]
    bigger = [seen(deployment, "web", memory_mib=4096), ok[1]]
    assert apply_check(deployment, bigger, "pm") == 1
    assert apply_check(deployment, bigger, "pm") == 0  # the same difference: nothing new
    assert apply_check(deployment, [seen(deployment, "web", memory_mib=8192), ok[1]], "pm") == 1
    assert deployment.view()["drift"][0]["actual"] == 8192
    assert apply_check(deployment, ok, "pm") == 1
    assert deployment.view()["drifted"] is False
    kinds = [type(e).__qualname__ for e in deployment.collect_events()][-4:]
    assert kinds == ["Deployment.Deployed"] + ["Deployment.DriftDetected"] * 2 + ["Deployment.DriftResolved"]


def test_a_power_action_on_its_way_is_no_drift() -> None:
    deployment = deployed()
    deployment.request_power("web", "off", "alice", None)
    assert drift.differences(deployment, [seen(deployment, "web", power="poweredOff"), seen(deployment, "db")]) == []


def test_adopting_changes_the_spec_and_the_configuration_version() -> None:
    deployment = deployed()
    apply_check(deployment, [seen(deployment, "web", cpus=4), seen(deployment, "db")], "pm")
    deployment._drift_adopted(machine="web", field="cpus", value=4, configuration_version=2, actor="bob", reason="r")
    assert deployment.machine("web")["spec"]["cpus"] == 4
    assert deployment.configuration_version == 2
    assert drift.differences(deployment, [seen(deployment, "web", cpus=4), seen(deployment, "db")]) == []


def test_orphans_are_tagged_vms_no_history_holds() -> None:
    deployment = deployed()
    stray = replace(seen(deployment, "web"), vm_id="id-stray", deployment_id=UUID(int=1))
    extra = replace(seen(deployment, "cache"), vm_id="id-cache")
    twin = replace(seen(deployment, "web"), vm_id="id-old-web")
    found = drift.orphans([seen(deployment, "web"), stray, extra, twin], {deployment.id: deployment, UUID(int=1): None})
    assert {o["vm_id"]: o["reason"] for o in found} == {
        "id-stray": "no such deployment in the history",
        "id-cache": "its deployment has no machine 'cache'",
        "id-old-web": "machine 'web' of its deployment is VM id-web",
    }


@pytest.mark.parametrize("key", ["web", "web.", ".cpus", "web.colour", ""])
def test_a_drift_key_names_a_machine_and_a_known_field(key: str) -> None:
    with pytest.raises(ValidationError):
        parse_drift_key(key)


def test_a_machine_name_with_dots_keeps_them() -> None:
    assert parse_drift_key("app.v2.memory_mib") == ("app.v2", "memory_mib")


def test_machine_changes_name_added_removed_and_changed_fields() -> None:
    now = [machine("web"), machine("db")]
    after = [machine("web", cpus=4), machine("cache")]
    assert preview.machine_changes(now, after) == {
        "added": ["cache"], "removed": ["db"], "changed": {"web": {"cpus": [2, 4]}},
    }  # fmt: skip


def test_an_upgrade_preview_tells_reconfigure_from_rebuild() -> None:
    deployment = deployed()
    target = [machine("web", memory_mib=4096), machine("db", template="tpl-other")]
    actions = {v["machine"]: v for v in preview.upgrade_preview(deployment, 2, target)["vms"]}
    assert actions["web"]["action"] == "reconfigure"
    assert (actions["db"]["action"], actions["db"]["because"]) == ("rebuild", ["template"])


class Prober:
    def __init__(self, status: int | None, open_port: bool) -> None:
        self.status, self.open_port, self.urls = status, open_port, []  # type: ignore[var-annotated]

    def http_status(self, url: str, timeout_seconds: float) -> int:
        self.urls.append(url)
        if self.status is None:
            raise OSError("connection refused")
        return self.status

    def tcp_open(self, host: str, port: int, timeout_seconds: float) -> bool:
        return self.open_port


def test_checks_judge_status_port_and_tools() -> None:
    target = verification.Target("web", "10.0.0.7", "vm-1")
    http = verification.parse_check({"kind": "http", "port": 8080, "path": "/ok"}, "c")
    prober = Prober(503, True)
    result = verification.run_check(http, target, prober, lambda vm: (True, "10.0.0.7"))
    assert (result["ok"], result["detail"]) == (False, "status 503, expected 200")
    assert prober.urls == ["http://10.0.0.7:8080/ok"]
    assert verification.run_check(http, target, Prober(None, True), lambda vm: (True, None))["ok"] is False
    tcp = verification.parse_check({"kind": "tcp", "port": 22}, "c")
    assert verification.run_check(tcp, target, Prober(200, True), lambda vm: (True, None))["ok"] is True
    tools = verification.parse_check({"kind": "tools"}, "c")
    assert verification.run_check(tools, target, prober, lambda vm: (True, None))["ok"] is False  # no guest IP
    assert verification.run_check(tools, target, prober, lambda vm: (True, "10.0.0.7"))["ok"] is True


def test_a_stage_without_checks_verifies_nothing() -> None:
    assert verification.parse_verification(None) is None
    assert verification.parse_verification({"checks": []}) is None
    assert verification.parse_verification({"checks": [{"kind": "tools"}]}) == {
        "checks": [{"kind": "tools"}], "deadline_seconds": 300, "rollback": False,
    }  # fmt: skip
