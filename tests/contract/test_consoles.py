"""Consoles and power of a deployment's machines, over the simulated vCenter, on every persistence."""

from __future__ import annotations

from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import InvalidTransitionError, NotFoundError, ValidationError
from tests.support import THREE_TIER, stages


@pytest.fixture
def deployment_id(runtime: Runtime) -> UUID:
    service = runtime.app.register_service("payroll", "", stages("int", "test"), actor="a").value
    configuration = runtime.app.create_configuration(service.id, "p", "", [{"name": "front"}], THREE_TIER, actor="a")
    deployment_id = runtime.app.deploy(configuration.value.id, "int", actor="a").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return deployment_id


def topics(runtime: Runtime, deployment_id: UUID) -> list[str]:
    return [
        n.topic.removeprefix("stagekeeper:Deployment.")
        for n in runtime.app.select_notifications(1, 100_000)
        if n.originator_id == deployment_id
    ]


def vm_of(runtime: Runtime, vcenter: SimulatedVCenter, deployment_id: UUID, machine: str) -> str:
    vm_id = runtime.app.deployment(deployment_id).machine(machine)["vm_id"]
    assert vm_id is not None
    return str(vm_id)


def test_power_off_and_on_are_requested_carried_out_and_recorded(
    runtime: Runtime, vcenter: SimulatedVCenter, deployment_id: UUID
) -> None:
    vm_id = vm_of(runtime, vcenter, deployment_id, "web1")
    requested = runtime.app.power_machine(deployment_id, "web1", "off", actor="olivia", reason="maintenance")
    assert requested.value.machine("web1")["power_pending"] == ["off"]
    assert vcenter.power_state(vm_id) == "poweredOn"  # the process manager acts, not the command
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.machine("web1")["power"] == "poweredOff"
    assert deployment.machine("web1")["power_pending"] == []
    assert vcenter.power_state(vm_id) == "poweredOff"
    assert topics(runtime, deployment_id)[-2:] == ["PowerRequested", "MachinePowerChanged"]
    runtime.app.power_machine(deployment_id, "web1", "on", actor="olivia")
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).machine("web1")["power"] == "poweredOn"
    assert vcenter.power_state(vm_id) == "poweredOn"


def test_power_requests_that_break_a_rule_are_refused(runtime: Runtime, deployment_id: UUID) -> None:
    with pytest.raises(ValidationError) as bad:
        runtime.app.power_machine(deployment_id, "web1", "hibernate", actor="olivia")
    assert bad.value.field == "action"
    with pytest.raises(NotFoundError):
        runtime.app.power_machine(deployment_id, "nope", "off", actor="olivia")
    runtime.app.power_machine(deployment_id, "web1", "off", actor="olivia")
    runtime.catch_up()
    for action in ("off", "reset"):
        with pytest.raises(InvalidTransitionError, match="poweredOff"):
            runtime.app.power_machine(deployment_id, "web1", action, actor="olivia")
    runtime.app.undeploy(deployment_id, actor="olivia")
    with pytest.raises(InvalidTransitionError):
        runtime.app.power_machine(deployment_id, "web2", "reset", actor="olivia")


def test_a_vcenter_fault_while_powering_is_recorded_as_power_failed(
    runtime: Runtime, vcenter: SimulatedVCenter, deployment_id: UUID
) -> None:
    vcenter.inject_fault("reset", "TaskInProgress: the VM is busy")
    runtime.app.power_machine(deployment_id, "app1", "reset", actor="olivia")
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed"  # a failed power action does not fail the deployment
    assert deployment.machine("app1")["power"] == "poweredOn"
    assert deployment.machine("app1")["power_pending"] == []
    assert topics(runtime, deployment_id)[-1] == "PowerFailed"
    last = runtime.app.decode(runtime.app.select_notifications(1, 100_000)[-1])
    assert "TaskInProgress: the VM is busy" in (last.reason or "")


def test_opening_a_console_issues_a_ticket_and_records_who_opened_it(
    runtime: Runtime, vcenter: SimulatedVCenter, deployment_id: UUID
) -> None:
    outcome = runtime.app.open_console(deployment_id, "db1", actor="olivia")
    assert outcome.value.vm_id == vm_of(runtime, vcenter, deployment_id, "db1")
    assert outcome.value.vmrc_url.endswith(f"/?moid={outcome.value.vm_id}")
    last = runtime.app.decode(runtime.app.select_notifications(outcome.position, 1)[0])
    assert type(last).__qualname__ == "Deployment.ConsoleOpened"
    assert (last.machine, last.actor) == ("db1", "olivia")
    assert outcome.value.webmks_url.rsplit("/", 1)[1] not in str(last.__dict__)  # the ticket is not stored
    png = runtime.app.machine_screenshot(deployment_id, "db1")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    runtime.app.power_machine(deployment_id, "db1", "off", actor="olivia")
    runtime.catch_up()
    with pytest.raises(InvalidTransitionError, match="poweredOff"):
        runtime.app.open_console(deployment_id, "db1", actor="olivia")
    with pytest.raises(InvalidTransitionError, match="poweredOff"):
        runtime.app.machine_screenshot(deployment_id, "db1")
