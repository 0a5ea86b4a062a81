"""The audit log on every persistence: every event gets a row, a real summary and a chain link."""

from __future__ import annotations

from uuid import UUID

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from projections.summaries import SUMMARIES
from projections.verify import verify
from tests.support import THREE_TIER, machine, stages


def upgrade_in_place(runtime: Runtime, vcenter: SimulatedVCenter, configuration_id: UUID, deployment_id: UUID) -> None:
    app = runtime.app
    running = app.deployment(deployment_id).configuration_version
    app.add_machine(configuration_id, machine("web8"), actor="a")
    wider = machine("web2", cpus=4, nics=[{"network": "front"}, {"network": "front"}])
    app.change_machine(configuration_id, "web2", wider, actor="a")
    latest = app.change_machine(
        configuration_id, "app1", machine("app1", template="tpl-rhel-9"), actor="a"
    ).value.version
    vcenter.inject_fault("reconfigure", "InvalidState")
    app.upgrade_deployment(deployment_id, latest, actor="a")
    runtime.catch_up()
    app.upgrade_deployment(deployment_id, latest, actor="a")
    runtime.catch_up()
    app.upgrade_deployment(deployment_id, running, actor="a")  # web8 goes again
    runtime.catch_up()
    app.power_deployment(deployment_id, "on", actor="a")
    runtime.catch_up()


def busy_history(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    app = runtime.app
    service_id = app.register_service("payroll", "d", stages("int", "test"), actor="a").value.id
    app.update_service(service_id, "new words", actor="a")
    app.add_stage(service_id, {"name": "uat", "resource_pool": "/DC0/host/DC0_C0/Resources/uat"}, 1, actor="a")
    app.update_stage(service_id, "uat", {"restricted": True, "resource_pool": "/DC0/host/DC0_C0/Resources/u2"}, "a")
    app.reorder_stages(service_id, ["int", "test", "uat"], actor="a")
    pools = [{"cidr": "10.9.0.0/28", "gateway": "10.9.0.1", "dns": ["10.9.0.2"]}]
    app.update_stage(service_id, "int", {"ip_pools": pools}, actor="a")
    grant = app.grant_role(service_id, "stage-operator", None, "cn=ops,dc=x", "test", actor="a").value
    app.revoke_grant(service_id, grant["id"], actor="a", reason="left the team")
    configuration_id = app.create_configuration(
        service_id, "c", "", [{"name": "front"}], THREE_TIER, actor="a"
    ).value.id
    app.add_network(configuration_id, {"name": "back"}, actor="a")
    app.remove_network(configuration_id, "back", actor="a")
    app.add_machine(configuration_id, machine("web9"), actor="a")
    app.change_machine(configuration_id, "web9", machine("web9", cpus=4), actor="a")
    app.remove_machine(configuration_id, "web9", actor="a")
    app.revise_configuration(configuration_id, {"name": "c2", "description": "x"}, actor="a")
    app.restore_configuration(configuration_id, 1, actor="a")
    deployment_id = app.deploy(configuration_id, "int", actor="a").value.id
    runtime.catch_up()
    app.update_stage(service_id, "int", {"name": "integration"}, actor="a")
    app.promote(deployment_id, actor="a")
    runtime.catch_up()
    vcenter.inject_fault("relocate", "boom")
    app.demote(deployment_id, actor="a")
    runtime.catch_up()
    app.demote(deployment_id, actor="a")
    runtime.catch_up()
    app.update_stage(service_id, "test", {"resource_pool": "/DC0/host/DC0_H1/Resources/t"}, actor="a")
    app.promote(deployment_id, actor="a")  # across clusters: recloned
    runtime.catch_up()
    app.open_console(deployment_id, "web1", actor="a")
    app.power_machine(deployment_id, "web1", "off", actor="a")
    runtime.catch_up()
    vcenter.inject_fault("power_on", "busy")
    app.power_machine(deployment_id, "web1", "on", actor="a")
    runtime.catch_up()
    upgrade_in_place(runtime, vcenter, configuration_id, deployment_id)
    app.undeploy(deployment_id, actor="a")
    runtime.catch_up()
    vcenter.inject_fault("clone", "no space")
    failing = app.deploy(configuration_id, "test", actor="a").value.id
    runtime.catch_up()
    app.retry_deployment(failing, actor="a")
    runtime.catch_up()
    app.undeploy(failing, actor="a")
    runtime.catch_up()
    legacy = vcenter.add_existing_vm("LEGACY", "/DC0/host/DC0_C0/Resources", nics=[{"network": "front", "mac": "x"}])
    adopted = app.capture(service_id, "test", "legacy", actor="a", vms=[legacy]).value.deployment
    assert adopted is not None
    runtime.catch_up()
    app.undeploy(adopted.id, actor="a")  # lets go of it
    runtime.catch_up()
    app.remove_stage(service_id, "uat", actor="a")
    app.update_service(service_id, None, actor="a", name="renamed")
    app.retire_configuration(configuration_id, actor="a", reason="replaced")
    app.record_refusal("promote", "invalid_transition", "nope", "mallory", deployment_id)
    _token, record, _ = app.issue_token("admin", "ci", 5, actor="admin")
    app.revoke_token(record.id, actor="admin", is_admin=True)
    app.ensure_local_account("admin", "pw-1")
    app.ensure_local_account("admin", "pw-2")
    app.retire_service(service_id, actor="a")
    runtime.catch_up()


def test_every_event_is_audited_with_a_real_summary_and_the_chain_verifies(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    busy_history(runtime, vcenter)
    rows = runtime.store.query("SELECT position, event_type, summary, actor FROM sk_audit ORDER BY position")
    assert [r["position"] for r in rows] == list(range(1, runtime.app.head() + 1))
    types = {r["event_type"] for r in rows}
    missing = set(SUMMARIES) - types
    assert missing <= {"NameClaim.Reclaimed"}, missing
    fallbacks = [r for r in rows if r["summary"] == r["event_type"]]
    assert fallbacks == []
    verdict = verify(runtime.app, runtime.store)
    assert verdict.ok
    assert verdict.checked == len(rows)


def test_refusals_carry_the_service_they_concerned(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    busy_history(runtime, vcenter)
    [refusal] = runtime.store.query("SELECT * FROM sk_audit WHERE event_type = 'Refusal.Recorded'")
    assert refusal["actor"] == "mallory"
    assert refusal["service_id"] is not None
