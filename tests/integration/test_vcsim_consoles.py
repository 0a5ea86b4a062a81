"""Consoles through the API on vcsim: the pyvmomi driver's console code against the vSphere API.

vcsim 0.24 lacks AcquireTicket and CreateScreenshot_Task; the project's harness implements both as
the API documents them (scripts/vcsim/console.go): a VirtualMachineTicket, and a task that writes a
PNG into the VM's folder on the datastore and returns its datastore path. So below, the ticket
comes from AcquireTicket("webmks") and the PNG is read back over the datastore HTTP interface."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from pyVmomi import vim

from adapters.runtime import Runtime
from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from api.app import create_app
from scripts.vcsim_harness import Vcsim
from tests.support import THREE_TIER, postgres_schema, runtime_for, settings_for, stages

AUTH = ("admin", "secret-pw")


@pytest.fixture
def runtime(vcsim: Vcsim) -> Iterator[Runtime]:
    vcsim.control("reset")
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim.driver())
        runtime.ensure_admin()
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(settings_for(runtime.settings.database_url), runtime=runtime, start_workers=False)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


def deployed(runtime: Runtime) -> UUID:
    service_id = runtime.app.register_service("consoles", "", stages("int"), actor="admin").value.id
    runtime.catch_up()
    configuration_id = runtime.app.create_configuration(
        service_id, "c", "", [{"name": "front"}], THREE_TIER[:2], actor="admin"
    ).value.id
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="admin").value.id
    runtime.catch_up()
    assert runtime.app.deployment(deployment_id).state == "deployed"
    return deployment_id


def vm_power(runtime: Runtime, vm_id: str) -> str:
    driver = runtime.vcenter
    assert isinstance(driver, PyVmomiDriver)
    vm = vim.VirtualMachine(vm_id, driver.session.connect()._stub)
    return str(vm.runtime.powerState)


def test_console_screenshot_and_power_of_a_vm_on_vcsim(runtime: Runtime, client: TestClient, vcsim: Vcsim) -> None:
    deployment_id = deployed(runtime)
    machine = f"/api/v1/deployments/{deployment_id}/machines/web1"
    vm_id = runtime.app.deployment(deployment_id).machine("web1")["vm_id"]

    shot = client.get(f"{machine}/screenshot", auth=AUTH)
    assert shot.status_code == 200, shot.text
    assert shot.headers["content-type"] == "image/png"
    assert shot.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(shot.content[16:20], "big") == 640  # drawn by the harness, read from the datastore

    console = client.get(f"{machine}/console", auth=AUTH)
    assert console.status_code == 200, console.text
    ticket = console.json()
    # The ESXi host vcsim placed the VM on, and a ticket only AcquireTicket could have made.
    assert re.fullmatch(r"wss://DC0_\w+:443/ticket/[0-9a-f]{32}", ticket["webmks_url"]), ticket
    clone = re.fullmatch(r"vmrc://clone:([0-9a-f-]{36})@([^/]+)/\?moid=(vm-\d+)", ticket["vmrc_url"])
    assert clone is not None, ticket
    assert (clone[2], clone[3]) == (urlsplit(vcsim.url).netloc, vm_id)
    # "Open console" goes to vCenter's own web console page (vcsim has none to serve; the
    # contract test checks that its sessionTicket is a real clone ticket).
    html5 = urlsplit(ticket["html5_url"])
    assert (html5.netloc, html5.path) == (urlsplit(vcsim.url).netloc, "/ui/webconsole.html")
    assert f"vmId={vm_id}&" in html5.query

    off = client.post(f"{machine}/power", json={"action": "off", "reason": "patching"}, auth=AUTH)
    assert off.status_code == 202, off.text
    runtime.catch_up()
    assert vm_power(runtime, vm_id) == "poweredOff"
    assert client.get(f"/api/v1/deployments/{deployment_id}", auth=AUTH).json()["machines"][0]["power"] == "poweredOff"
    assert client.get(f"{machine}/screenshot", auth=AUTH).status_code == 409
    assert client.post(f"{machine}/power", json={"action": "reset"}, auth=AUTH).status_code == 409

    on = client.post(f"{machine}/power", json={"action": "on"}, auth=AUTH)
    assert on.status_code == 202, on.text
    runtime.catch_up()
    assert vm_power(runtime, vm_id) == "poweredOn"
    audit = client.get("/api/v1/audit", params={"limit": 20}, auth=AUTH).json()["items"]
    kinds = [entry["event_type"] for entry in audit]
    assert "Deployment.ConsoleOpened" in kinds
    assert kinds.count("Deployment.MachinePowerChanged") == 2
