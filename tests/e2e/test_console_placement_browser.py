"""Placement in a real browser (Chromium, headless) against `stagekeeper serve`: the deployment page's
Placement column puts web1 and web2 on different hosts, and "Rebalance…" opens the dry-run plan."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.e2e.test_console_browser import TIMEOUT_MS, Console, console, no_browser_errors  # noqa: F401
from tests.support import machine


def test_the_placement_column_and_the_rebalance_plan(console: Console) -> None:  # noqa: F811
    _, configuration_id = console.service("storefront", "shop", [machine("web1"), machine("web2")])
    made = console.api.post(f"/api/v1/configurations/{configuration_id}/deployments", json={"stage": "int"})
    assert made.status_code == 202, made.text
    deployment_id = made.json()["id"]
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while console.api.get(f"/api/v1/deployments/{deployment_id}").json()["state"] != "deployed":
        assert time.monotonic() < deadline, "not deployed in time"
        time.sleep(0.2)
    page = console.page("alice", "alice-pw")
    page.goto(f"{console.server.url}/ui/deployments/{deployment_id}")
    expect(page.get_by_role("columnheader", name="Placement")).to_be_visible()
    hosts = [page.locator(f'[data-placement="{name}"]').inner_text() for name in ("web1", "web2")]
    assert hosts[0].startswith("DC0_C0_H")
    assert hosts[0] != hosts[1], "one tier, two hosts"
    console.shot(page, "placement-column")
    page.get_by_role("link", name="Rebalance…").click()
    expect(page.get_by_role("heading", name="Rebalance shop in int")).to_be_visible()
    expect(page.locator("#rebalance-plan")).to_contain_text("nothing to move")
    console.shot(page, "rebalance-plan")
    page.get_by_role("link", name="Back to the deployment").click()
    expect(page.get_by_role("heading", name="Machines")).to_be_visible()
