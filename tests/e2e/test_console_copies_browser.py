"""Patch testing in a real browser (Debian's Chromium, headless, Playwright) against a real
`stagekeeper serve` with directory sign-in and the simulated vCenter: an owner copies production into
test behind a fence (the page shows the fence's port groups, VLANs, gateway and NAT map), snapshots
the copy, finds it on "Copies & fences", swaps it into production keeping the previous deployment,
then swaps back. Screenshots are kept under the pytest temporary directory."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from scripts.slapd_harness import BIND_DN, BIND_PASSWORD, GROUP_BASE, OWNERS, USER_BASE, Slapd
from tests.e2e.conftest import start_server, stop_server
from tests.e2e.test_console_browser import CHROMIUM, FLAGS, TIMEOUT_MS, Console
from tests.fencing import THREE_TIER, fenced_stage


@pytest.fixture(scope="module")
def console(slapd: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    where = tmp_path_factory.mktemp("copies-console")
    env = {
        "STAGEKEEPER_LDAP_URL": slapd.url, "STAGEKEEPER_LDAP_BIND_DN": BIND_DN,
        "STAGEKEEPER_LDAP_BIND_PASSWORD": BIND_PASSWORD, "STAGEKEEPER_LDAP_USER_BASE": USER_BASE,
        "STAGEKEEPER_LDAP_GROUP_BASE": GROUP_BASE,
    }  # fmt: skip
    server = start_server(f"sqlite:///{where}/sk.db", where / "server.log", **env)
    shots = where / "screenshots"
    shots.mkdir()
    api = httpx.Client(base_url=server.url + "/", auth=("admin", "secret-pw"), timeout=30)
    assert api.post("/api/v1/templates/import", json={"all": True}).status_code == 200
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


def deployed(console: Console, deployment_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        view = console.api.get(f"/api/v1/deployments/{deployment_id}").json()
        if view["state"] == "deployed":
            return dict(view)
        assert time.monotonic() < deadline, view["state"]
        time.sleep(0.1)


def production(console: Console) -> str:
    """A 3-tier service whose stages can fence, owned by olivia, deployed (unfenced) in prod."""
    stages = [fenced_stage("test", 100, "10.61.0.0/24"), fenced_stage("prod", 300, "10.62.0.0/24")]
    service = console.api.post("/api/v1/services", json={"name": "shop", "stages": stages})
    assert service.status_code == 201, service.text
    service_id = service.json()["id"]
    grant = {"role": "service-owner", "group": OWNERS}
    assert console.api.post(f"/api/v1/services/{service_id}/grants", json=grant).status_code == 201
    body = {"name": "shop", "networks": [{"name": "front"}, {"name": "back"}], "machines": THREE_TIER}
    configuration = console.api.post(f"/api/v1/services/{service_id}/configurations", json=body)
    assert configuration.status_code == 201, configuration.text
    made = console.api.post(f"/api/v1/configurations/{configuration.json()['id']}/deployments", json={"stage": "prod"})
    assert made.status_code == 202, made.text
    return str(deployed(console, made.json()["id"])["id"])


def confirm(page: Page, button: str, fill: dict[str, str], submit: str) -> None:
    page.locator("#actions").get_by_role("button", name=button, exact=True).click()
    dialog = page.get_by_role("dialog")
    for label, value in fill.items():
        dialog.get_by_label(label).fill(value)
    dialog.get_by_role("button", name=submit, exact=True).click()


def test_copy_production_fenced_snapshot_swap_in_and_back(console: Console) -> None:
    prod_id = production(console)
    page = console.page("olivia", "olivia-pw")
    page.goto(f"{console.server.url}/ui/deployments/{prod_id}")
    page.locator("#actions").get_by_role("button", name="Copy", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Target stage").select_option("test")
    dialog.get_by_label("Fence the copy (own networks, same IPs and MACs)").check()
    dialog.get_by_label("Reason (optional)").fill("test patch 42")
    console.shot(page, "copies-01-copy-dialog")
    dialog.get_by_role("button", name="Copy", exact=True).click()

    live = page.locator("#deployment-live")
    expect(live.locator(".state").first).to_contain_text("deployed", timeout=TIMEOUT_MS)
    copy_id = page.url.rsplit("/", 1)[1]
    expect(live.locator(".tag-fenced")).to_contain_text("fenced")
    expect(live.locator(".tag-copy")).to_contain_text("copy")
    expect(page.locator("#relations")).to_contain_text("Copy of v1 in prod")
    networks = page.locator("#fence-networks tbody tr")
    expect(networks).to_have_count(2)
    expect(networks.first).to_contain_text(f"sk-{copy_id.replace('-', '')[:12]}-front")
    for machine in ("web", "app", "db"):
        expect(page.locator(f'#fence-nat tr[data-machine="{machine}"]')).to_contain_text("10.61.0.")
    source = console.api.get(f"/api/v1/deployments/{prod_id}").json()
    copy = console.api.get(f"/api/v1/deployments/{copy_id}").json()
    assert [m["mac"] for m in copy["machines"]] == [m["mac"] for m in source["machines"]]  # identical inside
    console.shot(page, "copies-02-fenced-copy")

    confirm(page, "Snapshot", {"Snapshot name": "before patch"}, "Snapshot")
    expect(page.locator("#snapshots + .relations")).to_contain_text("before patch", timeout=TIMEOUT_MS)

    page.get_by_role("link", name="Copies & fences").click()
    row = page.locator(f'#copies tr[data-deployment="{copy_id}"]')
    expect(row).to_contain_text("v1 in prod")
    expect(row).to_contain_text(re.compile(r"VLAN 1\d\d, 1\d\d"))  # two VLANs of test's range 100-199
    console.shot(page, "copies-03-copies-page")

    page.goto(f"{console.server.url}/ui/deployments/{copy_id}")
    page.locator("#actions").get_by_role("button", name="Swap into prod").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Keep the replaced deployment (powered off, for “Swap back”)")).to_be_checked()
    dialog.get_by_label("Reason (optional)").fill("patch 42 tested")
    dialog.get_by_role("button", name="Swap", exact=True).click()
    expect(live.locator(".state").first).to_contain_text("deployed", timeout=TIMEOUT_MS)
    expect(live).to_contain_text("in prod")
    expect(page.locator("#relations")).to_contain_text("Took the place of")
    expect(page.locator("#fence")).to_have_count(0)  # it left its fence
    console.shot(page, "copies-04-swapped-in")

    page.goto(f"{console.server.url}/ui/deployments/{prod_id}")
    expect(live.locator(".tag-kept")).to_contain_text("replaced")
    confirm(page, "Swap back", {"Reason (optional)": "roll back"}, "Swap back")
    expect(page.locator("#relations")).to_contain_text("Took the place of", timeout=TIMEOUT_MS)
    expect(live.locator(".state").first).to_contain_text("deployed")
    console.shot(page, "copies-05-swapped-back")
    assert console.api.get(f"/api/v1/deployments/{copy_id}").json()["replaced_by"] == prod_id
