"""Drift and previews in a real browser (the same Chromium, server and directory as
test_console_browser.py): the promote confirmation loads what changes in the next stage when it
opens; "Check now" compares the deployment with vCenter and says it matches."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.test_console_browser import TIMEOUT_MS, Console, console, no_browser_errors
from tests.support import machine

__all__ = ["console", "no_browser_errors"]  # the fixtures, shared with the main browser suite


def test_the_promote_dialog_previews_and_check_now_finds_no_drift(console: Console) -> None:
    _, configuration_id = console.service("ledger", "ledger-app", [machine("web1")])
    made = console.api.post(f"/api/v1/configurations/{configuration_id}/deployments", json={"stage": "int"})
    assert made.status_code == 202, made.text
    deployment_id = made.json()["id"]
    page = console.page("alice", "alice-pw")
    page.goto(f"{console.server.url}/ui/deployments/{deployment_id}")
    expect(page.locator("#deployment-live .state").first).to_contain_text("deployed", timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Promote").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Promote to test?")
    expect(dialog.locator(".preview")).to_contain_text("In test (nothing of this configuration runs there now)")
    expect(dialog.locator(".preview")).to_contain_text("VM of web1: move")
    console.shot(page, "20-promote-preview")
    dialog.get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Check now").click()
    expect(page.locator("#deployment-live")).to_contain_text("No drift recorded", timeout=TIMEOUT_MS)
    expect(page.locator("#deployment-live .tag-drift")).to_have_count(0)
