"""The governance pages in a real browser: an approver approves from the Approvals page, and the
stop-the-line banner appears on every page while an administrator holds the line."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

from scripts.slapd_harness import READERS
from tests.e2e import test_console_browser as browser
from tests.e2e.test_console_browser import Console
from tests.support import machine

# The browser suite's server, browser and error check, shared by this module.
console = browser.console
no_browser_errors = browser.no_browser_errors


def wait_for(console: Console, path: str, done: Any, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        body: dict[str, Any] = console.api.get(path).json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_an_approver_approves_in_the_console_and_the_promote_runs(console: Console) -> None:
    service_id, configuration_id = console.service("gov", "g1", [machine("web1")])
    policy = {"approvals": {"required": 1, "group": READERS}}
    assert console.api.patch(f"/api/v1/services/{service_id}/stages/test", json=policy).status_code == 200
    deployment = console.api.post(f"/api/v1/configurations/{configuration_id}/deployments", json={"stage": "int"})
    path = f"/api/v1/deployments/{deployment.json()['id']}"
    assert wait_for(console, path, lambda d: d["state"] == "deployed")["state"] == "deployed"
    held = console.api.post(path + "/promote", json={"reason": "release 9"})
    assert held.status_code == 202
    approval_id = held.json()["approval_id"]

    page = console.page("victor", "victor-pw")  # a member of the approvers' group
    page.get_by_role("link", name="Approvals").click()
    row = page.locator(f"tr[id='{approval_id}']")
    expect(row).to_contain_text("release 9")
    row.get_by_label("Reason").fill("smoke tests green")
    row.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", name="Approvals")).to_be_visible()
    console.shot(page, "approvals-after-approve")
    moved = wait_for(console, path, lambda d: (d["stage"], d["state"]) == ("test", "deployed"))
    assert (moved["stage"], moved["state"]) == ("test", "deployed")
    assert console.api.get(f"/api/v1/approvals/{approval_id}").json()["state"] == "executed"


def test_the_stop_the_line_banner_shows_on_every_page_until_lifted(console: Console) -> None:
    page = console.page("alice", "alice-pw")  # a directory administrator
    page.get_by_role("link", name="Approvals").click()
    page.get_by_label("Reason").last.fill("incident 77")
    page.get_by_role("button", name="Stop the line").click()
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text("incident 77")
    page.get_by_role("link", name="Board").click()
    expect(page.get_by_role("alert")).to_contain_text("The line is stopped")
    console.shot(page, "stop-the-line-banner")
    page.get_by_role("link", name="Approvals").click()
    page.get_by_label("Reason").last.fill("storage healthy again")
    page.get_by_role("button", name="Lift").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    assert console.api.get("/api/v1/stop-the-line").json()["on"] is False
