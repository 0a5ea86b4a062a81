""" "Open console" with the simulated vCenter: an audited ticket, then a real page Stagekeeper
serves (the simulation's stand-in for vCenter's /ui/webconsole.html), showing the VM's picture."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.vcenter import simulated
from api.app import create_app
from projections.audit_queries import AuditFilter
from tests.e2e.test_console_access import World, build_world
from tests.support import settings_for

AUTH = ("admin", "secret-pw")


@pytest.fixture
def world() -> Iterator[World]:
    built = build_world()
    yield built
    built.runtime.close()


def world_id(world: World) -> UUID:
    return UUID(world.ids["{deployment_id}"])


def opened_count(world: World) -> int:
    world.runtime.catch_up()
    entries, _ = world.runtime.audit.page(AuditFilter(event_type="Deployment.ConsoleOpened"), None, 100)
    return len(entries)


def stranger(world: World) -> TestClient:
    """Another browser: no Stagekeeper session at all (the ticket is the only credential)."""
    return TestClient(create_app(settings_for("memory://"), runtime=world.runtime, start_workers=False))


def test_open_console_goes_to_the_simulated_web_console_page_with_an_audited_ticket(world: World) -> None:
    world.sign_in("operator")
    machine = f"/ui/deployments/{world.ids['{deployment_id}']}/machines/web1"
    tile = world.client.get(f"/ui/deployments/{world.ids['{deployment_id}']}").text
    assert f'href="{machine}/console/open" target="_blank"' in tile
    assert f'href="{machine}/console" target="_blank"' in tile  # the VMware Remote Console link stays
    before = opened_count(world)
    opened = world.client.get(f"{machine}/console/open", follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["cache-control"] == "no-store"
    address = opened.headers["location"]
    page_url = urlsplit(address)
    query = dict(parse_qsl(page_url.query))
    assert page_url.path == "/ui/simulated-vcenter/webconsole.html"
    vm_id = world.runtime.app.deployment(world_id(world)).machine("web1")["vm_id"]
    assert query["vmId"] == vm_id
    assert set(query) == {"vmId", "vmName", "serverGuid", "host", "sessionTicket"}
    assert opened_count(world) == before + 1, "each opening is audited"

    browser = stranger(world)
    page = browser.get(address)
    assert page.status_code == 200, page.text
    assert "Simulated vCenter." in page.text
    assert f"Simulated console of {query['vmName']}" in page.text
    screen = re.search(r'<img class="screen" src="([^"]+)"', page.text)
    assert screen is not None
    png = browser.get(screen.group(1).replace("&amp;", "&"))
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert "no-store" in page.headers["cache-control"]

    again = world.client.get(f"{machine}/console/open", follow_redirects=False).headers["location"]
    assert again != address, "a new ticket per opening"
    assert opened_count(world) == before + 2


def test_the_simulated_console_page_refuses_forged_expired_and_borrowed_tickets(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.sign_in("admin")
    machine = f"/ui/deployments/{world.ids['{deployment_id}']}/machines"
    address = world.client.get(f"{machine}/web1/console/open", follow_redirects=False).headers["location"]
    query = dict(parse_qsl(urlsplit(address).query))
    other_vm = world.runtime.app.deployment(world_id(world)).machine("app1")["vm_id"]
    browser = stranger(world)
    for changed in ({"sessionTicket": "cst-SIM-forged"}, {"vmId": other_vm}):
        refused = browser.get("/ui/simulated-vcenter/webconsole.html", params={**query, **changed})
        assert refused.status_code == 403, changed
        assert "not valid for this machine" in refused.text
        shot = browser.get("/ui/simulated-vcenter/screen.png", params={**query, **changed})
        assert shot.status_code == 403
    monkeypatch.setattr(simulated, "TICKET_LIFETIME", timedelta(seconds=-1))
    expired = world.client.get(f"{machine}/web1/console/open", follow_redirects=False).headers["location"]
    assert browser.get(expired).status_code == 403


def test_the_api_gives_the_simulated_console_page_as_an_absolute_address(world: World) -> None:
    deployment = world.ids["{deployment_id}"]
    ticket = world.client.get(f"/api/v1/deployments/{deployment}/machines/web1/console", auth=AUTH)
    assert ticket.status_code == 200, ticket.text
    html5 = ticket.json()["html5_url"]
    assert html5.startswith("http://testserver/ui/simulated-vcenter/webconsole.html?vmId=")
    assert stranger(world).get(html5).status_code == 200
