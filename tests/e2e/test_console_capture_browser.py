"""Capture in a real browser (Debian's Chromium, headless, Playwright) against a real `stagekeeper serve`
with directory sign-in: an owner who operates production previews a capture (machines, claims, and a
refusal naming the VM and why), captures, sees the "captured" badge on the deployment page and the
board, and lets go of the VMs, which keep running untagged in the simulated vCenter (its inventory
file is read after the server wrote it). Screenshots are kept under the pytest temporary directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from adapters.vcenter.simulated import SimulatedVCenter
from scripts.slapd_harness import BIND_DN, BIND_PASSWORD, GROUP_BASE, OWNERS, USER_BASE, Slapd
from tests.e2e.conftest import start_server, stop_server
from tests.e2e.test_console_browser import CHROMIUM, FLAGS, TIMEOUT_MS, Console
from tests.support import ROOT_POOL, stages

NIC = {"network": "VM Network", "adapter": "vmxnet3"}
DISK = {"label": "Hard disk 1", "capacity_kib": 40 * 1048576, "provisioning": "thick", "delta_chain": []}


def seed_inventory(state: Path) -> None:
    """VMs made before Stagekeeper, in the inventory the server's simulated vCenter loads at start."""
    vcenter = SimulatedVCenter(state_file=state)
    vcenter.add_existing_vm("ERP_DB", ROOT_POOL, cpus=4, memory_mib=8192, ip="10.20.0.10", hostname="erp-db",
                            disks=[DISK], nics=[{**NIC, "mac": "00:50:56:20:00:10"}])  # fmt: skip
    vcenter.add_existing_vm("ERP_WEB", ROOT_POOL, cpus=2, memory_mib=4096, ip="10.20.0.11",
                            nics=[{**NIC, "mac": "00:50:56:20:00:11"}])  # fmt: skip
    vcenter.add_existing_vm("ERP_OLD", ROOT_POOL, snapshots=["before-patch"])


def inventory(state: Path) -> dict[str, dict[str, Any]]:
    return {vm["name"]: vm for vm in json.loads(state.read_text())["vms"]}


@pytest.fixture(scope="module")
def console(slapd: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    where = tmp_path_factory.mktemp("capture-console")
    state = where / "vcenter.json"
    seed_inventory(state)
    env = {
        "STAGEKEEPER_LDAP_URL": slapd.url, "STAGEKEEPER_LDAP_BIND_DN": BIND_DN,
        "STAGEKEEPER_LDAP_BIND_PASSWORD": BIND_PASSWORD, "STAGEKEEPER_LDAP_USER_BASE": USER_BASE,
        "STAGEKEEPER_LDAP_GROUP_BASE": GROUP_BASE, "STAGEKEEPER_SIMULATOR_STATE": str(state),
    }  # fmt: skip
    server = start_server(f"sqlite:///{where}/sk.db", where / "server.log", **env)
    shots = where / "screenshots"
    shots.mkdir()
    api = httpx.Client(base_url=server.url + "/", auth=("admin", "secret-pw"), timeout=30)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield Console(server, browser, shots, api, [])
        finally:
            browser.close()
            api.close()
            stop_server(server)


@pytest.fixture(autouse=True)
def no_browser_errors(console: Console) -> Iterator[None]:
    console.errors.clear()
    yield
    assert console.errors == [], "\n".join(console.errors)


def erp_service(console: Console) -> str:
    """A service whose production is restricted; olivia owns it (group) and operates production."""
    pools = [
        {**s, "resource_pool": f"{ROOT_POOL}/erp-{s['name']}"} for s in stages("test", "prod", restricted=("prod",))
    ]
    made = console.api.post("/api/v1/services", json={"name": "erp", "stages": pools})
    assert made.status_code == 201, made.text
    service_id = str(made.json()["id"])
    for grant in (
        {"role": "service-owner", "group": OWNERS},
        {"role": "stage-operator", "user": "olivia", "stage": "prod"},
    ):
        assert console.api.post(f"/api/v1/services/{service_id}/grants", json=grant).status_code == 201
    return service_id


def test_an_owner_previews_captures_sees_the_badge_and_lets_go(console: Console) -> None:
    state = console.server.log.parent / "vcenter.json"
    service_id = erp_service(console)
    page = console.page("olivia", "olivia-pw")
    page.goto(f"{console.server.url}/ui/services/{service_id}")
    page.get_by_text("Capture running VMs").click()
    form = page.locator("#capture form")
    form.get_by_label("Stage", exact=True).select_option("prod")
    form.get_by_label("Configuration to record (new or existing)").fill("erp-prod")
    form.get_by_label("VMs (ids or names, one per line)").fill("ERP_DB\nERP_WEB\nERP_OLD")
    form.get_by_label("Reason").fill("bring production under management")
    form.get_by_role("button", name="Preview").click()

    preview = page.locator("#capture-preview")
    expect(preview).to_contain_text("Preview: erp-prod v1 in prod")
    expect(page.locator('#capture-refusals li[data-vm="ERP_OLD"]')).to_contain_text("before-patch")
    db = page.locator('#capture-machines tr[data-machine="erp-db"]')
    for shown in ("ERP_DB", "4 vCPU", "8192 MiB", "40.0 GiB thick", "vmxnet3", "00:50:56:20:00:10", "10.20.0.10"):
        expect(db).to_contain_text(shown)
    expect(page.locator("#capture-claims")).to_contain_text("00:50:56:20:00:11")
    console.shot(page, "capture-01-preview-with-refusal")

    form = page.locator("#capture form")
    form.get_by_label("VMs (ids or names, one per line)").fill("ERP_DB\nERP_WEB")
    form.get_by_role("button", name="Preview").click()
    expect(page.locator("#capture-preview")).to_contain_text("Nothing stops this capture")
    page.locator("#capture form").get_by_role("button", name="Capture", exact=True).click()

    expect(page.get_by_role("heading", name="Machines")).to_be_visible()
    live = page.locator("#deployment-live")
    expect(live.locator(".tag-captured")).to_contain_text("captured")
    expect(live.locator(".state").first).to_contain_text("deployed")
    expect(page.locator('tr[data-machine="erp-db"]')).to_contain_text("10.20.0.10")
    console.shot(page, "capture-02-deployment")
    deployment_url = page.url

    page.goto(console.server.url + "/ui/")
    card = page.locator('.svc-row:has-text("erp") li[data-stage="prod"] .card')
    expect(card).to_contain_text("erp-prod")
    expect(card.locator(".tag-captured")).to_contain_text("captured")
    console.shot(page, "capture-03-board-badge")

    page.goto(deployment_url)
    page.get_by_role("button", name="Undeploy").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Destroy VMs")).to_be_visible()
    dialog.get_by_label("Reason").fill("hand production back")
    console.shot(page, "capture-04-let-go-or-destroy")
    dialog.get_by_role("button", name="Let go (leave VMs running)").click()
    expect(page.locator("#deployment-live .state").first).to_contain_text("undeployed", timeout=TIMEOUT_MS)
    expect(page.locator('tr[data-machine="erp-web"]')).to_contain_text("released")
    console.shot(page, "capture-05-let-go")

    vms = inventory(state)
    assert [(vms[n]["powered_on"], vms[n]["deployment_id"]) for n in ("ERP_DB", "ERP_WEB")] == [(True, ""), (True, "")]
