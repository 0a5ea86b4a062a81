"""The audit log reads well for drift and verification (the main audit history in test_audit.py
does not reach them): what differed, what was adopted or reverted (and why it failed), the stage's
checks, and each verification's outcome. Simulated vCenter, every persistence."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from tests.contract.test_drift import deployed
from tests.support import ROOT_POOL, machine


def summaries(runtime: Runtime, aggregate_id: UUID) -> dict[str, list[str]]:
    runtime.catch_up()
    rows = runtime.store.query(
        "SELECT event_type, summary FROM sk_audit WHERE aggregate_id = %s ORDER BY position", (str(aggregate_id),)
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["event_type"], []).append(row["summary"])
    return found


def test_drift_is_audited_from_detection_to_adoption_revert_and_resolution(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    _, deployment_id = deployed(runtime)
    db = str(runtime.app.deployment(deployment_id).machine("db")["vm_id"])
    vcenter.enable_hot_add(db)
    vcenter.reconfigure(db, 4, 3072, ())
    runtime.drift_check.run_cycle()
    runtime.app.adopt_drift(deployment_id, "db.cpus", actor="bob", reason="sized by the DBA")
    vcenter.inject_fault("reconfigure", "host busy")
    runtime.app.revert_drift(deployment_id, "db.memory_mib", actor="bob", reason="unplanned")
    runtime.catch_up()
    runtime.app.revert_drift(deployment_id, "db.memory_mib", actor="bob", reason="again")
    runtime.catch_up()
    runtime.drift_check.run_cycle()
    found = summaries(runtime, deployment_id)
    assert found["Deployment.DriftDetected"] == [
        "drift on machine 'db': cpus is 4 in vCenter, 2 in the history",
        "drift on machine 'db': memory_mib is 3072 in vCenter, 2048 in the history",
    ]
    assert found["Deployment.DriftAdopted"] == [
        "drift on machine 'db' adopted: cpus is now 4 (configuration version 2)"
    ]
    assert found["Deployment.DriftRevertRequested"] == ["revert of machine 'db' memory_mib to 2048 requested"] * 2
    assert found["Deployment.DriftReverted"] == [
        "revert of machine 'db' memory_mib failed: vCenter fault during reconfigure: host busy",
        "machine 'db' memory_mib put back as the history says",
    ]
    assert found["Deployment.DriftResolved"] == ["drift on machine 'db' memory_mib gone: vCenter agrees again"]


def test_verification_settings_and_outcomes_are_audited(runtime: Runtime) -> None:
    stages: list[dict[str, Any]] = [
        {"name": n, "resource_pool": f"{ROOT_POOL}/{n}-pool", "restricted": False} for n in ("int", "prod")
    ]
    service = runtime.app.register_service("shop", "", stages, actor="a").value
    checks = {"checks": [{"kind": "tools"}, {"kind": "tcp", "port": 9}], "deadline_seconds": 5, "rollback": True}
    runtime.app.update_stage(service.id, "prod", {"verification": checks}, actor="a")
    configuration_id = runtime.app.create_configuration(
        service.id, "shop", "", [{"name": "front"}], [machine("web", customization={"os": "linux",
                                                                "hostname": "web", "ip_mode": "dhcp"})], actor="a"
    ).value.id  # fmt: skip
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="a").value.id
    runtime.catch_up()
    runtime.app.promote(deployment_id, actor="a")
    runtime.catch_up()
    runtime.clock.advance(seconds=6)  # type: ignore[attr-defined]
    runtime.process.verification.recheck_all([deployment_id])
    runtime.catch_up()
    found = summaries(runtime, deployment_id)
    [started] = found["Deployment.VerificationStarted"]
    assert started.startswith("verification after promote started: 2 check(s) until ")
    assert started.endswith(", rollback on failure")
    [failed] = found["Deployment.VerificationFailed"]
    assert failed.startswith("verification failed: ")
    assert "tcp web" in failed
    assert failed.endswith("; rolled back (demote)")
    service_rows = summaries(runtime, service.id)
    assert service_rows["Service.StageVerificationChanged"] == [
        "verification of stage 'prod': none -> tools, tcp 9 within 5s, rollback on failure"
    ]
