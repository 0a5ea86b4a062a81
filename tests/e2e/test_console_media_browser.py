"""The Media and Storage pages in a real browser (Debian's Chromium, headless, Playwright) against a
real `stagekeeper serve`: an owner uploads an ISO through the page's form (the script sends the
file as the body), a machine attaches it, the delete is refused on the page, and the Storage page
shows the deployment hanging off its template. Screenshots are kept under the pytest temporary
directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from scripts.slapd_harness import BIND_DN, BIND_PASSWORD, GROUP_BASE, OWNERS, USER_BASE, Slapd
from tests.e2e.conftest import start_server, stop_server
from tests.e2e.test_console_browser import CHROMIUM, FLAGS, Console
from tests.support import machine


@pytest.fixture(scope="module")
def console(slapd: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    where = tmp_path_factory.mktemp("media-console")
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


def test_an_owner_uploads_attaches_and_cannot_delete_an_attached_iso(console: Console, tmp_path: Path) -> None:
    service_id, configuration_id = console.service("shop", "web", [machine("web1")])
    grant = {"role": "service-owner", "group": OWNERS}
    assert console.api.post(f"/api/v1/services/{service_id}/grants", json=grant).status_code == 201
    iso = tmp_path / "tools.iso"
    iso.write_bytes(b"CD001" * 20_000)
    page = console.page("olivia", "olivia-pw")
    page.get_by_role("link", name="Media").click()
    expect(page.get_by_role("heading", name="Media")).to_be_visible()
    page.get_by_label("Name").fill("tools.iso")
    page.get_by_label("ISO file").set_input_files(str(iso))
    page.get_by_role("button", name="Upload").click()
    row = page.locator("#media tr", has_text="tools.iso")
    expect(row).to_contain_text("100,000 bytes")
    console.shot(page, "media-01-uploaded")
    changed = console.api.put(
        f"/api/v1/configurations/{configuration_id}/machines/web1", json=machine("web1", iso="tools.iso")
    )
    assert changed.status_code == 200, changed.text
    deployment = httpx.post(
        console.server.url + f"/api/v1/configurations/{configuration_id}/deployments",
        json={"stage": "int"}, auth=("olivia", "olivia-pw"), timeout=30,
    )  # fmt: skip
    assert deployment.status_code == 202, deployment.text
    page.reload()
    page.get_by_role("button", name="Delete tools.iso").click()
    expect(page.get_by_role("alert")).to_contain_text("machine 'web1'")
    console.shot(page, "media-02-delete-refused")
    page.get_by_role("link", name="Storage").click()
    node = page.locator(f'#tree li[data-node="{deployment.json()["id"]}"]')
    expect(node).to_contain_text("web in int")
    expect(page.locator("#tree-table")).to_contain_text("tpl-ubuntu-2404")
    console.shot(page, "media-03-storage-tree")
