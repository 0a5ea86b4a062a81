"""The web console in a real browser (Debian's Chromium, headless, driven by Playwright) against a
real `stagekeeper serve` with directory sign-in (slapd). Screenshots are kept under the pytest
temporary directory; each test prints where."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from scripts.slapd_harness import ADMIN_GROUP, BIND_DN, BIND_PASSWORD, GROUP_BASE, READERS, USER_BASE, Slapd
from tests.e2e.conftest import Server, start_server, stop_server
from tests.support import ROOT_POOL, machine, stages

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 15_000


@dataclass
class Console:
    server: Server
    browser: Browser
    shots: Path
    api: httpx.Client
    errors: list[str]

    def page(self, user: str, password: str, width: int = 1280, keyboard: bool = False) -> Page:
        page = self.browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        # Script errors and refused loads (the console's Content-Security-Policy included) fail the
        # test; a 4xx answer to a form is expected (it shows the form again with its messages).
        page.on("console", self._console_message)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(self.server.url + "/ui/")
        if keyboard:  # the user name has the focus; Tab, type, Enter
            page.keyboard.type(user)
            page.keyboard.press("Tab")
            page.keyboard.type(password)
            page.keyboard.press("Enter")
        else:
            page.get_by_label("Username").fill(user)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Board")).to_be_visible()
        return page

    def _console_message(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(
            "Failed to load resource: the server responded with a status of 4"
        ):
            where = f"{message.location.get('url')}:{message.location.get('lineNumber')}"
            self.errors.append(f"{message.text} (at {where})")

    def shot(self, page: Page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def service(self, name: str, configuration: str, machines: list[dict[str, Any]]) -> tuple[str, str]:
        """A service and configuration made through the API (tests of later pages start from here)."""
        # A resource pool belongs to one service's stage: each service gets its own.
        pools = [{**stage, "resource_pool": f"{ROOT_POOL}/{name}-{stage['name']}"} for stage in
                 stages("int", "test", "prod", restricted=("prod",))]  # fmt: skip
        body = {"name": name, "stages": pools}
        service = self.api.post("/api/v1/services", json=body)
        assert service.status_code == 201, service.text
        service_id = str(service.json()["id"])
        grant = {"role": "viewer", "group": READERS}
        assert self.api.post(f"/api/v1/services/{service_id}/grants", json=grant).status_code == 201
        made = self.api.post(
            f"/api/v1/services/{service_id}/configurations",
            json={"name": configuration, "networks": [{"name": "front"}], "machines": machines},
        )
        assert made.status_code == 201, made.text
        return service_id, str(made.json()["id"])


@pytest.fixture(scope="module")
def console(slapd: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    where = tmp_path_factory.mktemp("console")
    env = {
        "STAGEKEEPER_LDAP_URL": slapd.url, "STAGEKEEPER_LDAP_BIND_DN": BIND_DN,
        "STAGEKEEPER_LDAP_BIND_PASSWORD": BIND_PASSWORD, "STAGEKEEPER_LDAP_USER_BASE": USER_BASE,
        "STAGEKEEPER_LDAP_GROUP_BASE": GROUP_BASE, "STAGEKEEPER_LDAP_ADMIN_GROUP": ADMIN_GROUP,
        # Slow enough clones that the progress bars have something to show.
        "STAGEKEEPER_SIMULATOR_TASK_SECONDS": "0.4",
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


def test_a_directory_admin_creates_a_service_and_a_configuration_through_the_forms(console: Console) -> None:
    page = console.page("alice", "alice-pw")
    expect(page.locator(".who")).to_contain_text("Alice Admin")
    page.goto(console.server.url + "/ui/services/new")
    page.get_by_label("Name", exact=True).fill("payroll")
    for i, stage in enumerate(("int", "test", "prod")):
        page.locator(f"#st{i}-name").fill(stage)
        page.locator(f"#st{i}-pool").fill(
            f"{ROOT_POOL}/payroll-{stage}" if stage != "prod" else "/NoSuchDC/host/C0/Resources/pool"
        )
    page.locator("#st2-restricted").check()
    page.get_by_role("button", name="Create service").click()
    error = page.locator("#st2-pool + .field-error")
    expect(error).to_contain_text("datacenter 'NoSuchDC' does not exist")
    expect(page.locator("#st2-pool")).to_have_attribute("aria-invalid", "true")
    console.shot(page, "01-service-form-error")
    page.locator("#st2-pool").fill(f"{ROOT_POOL}/payroll-prod")
    page.get_by_role("button", name="Create service").click()
    expect(page.get_by_role("heading", name="payroll", exact=True)).to_be_visible()
    expect(page.locator("table.list").first.locator("tr", has_text="prod")).to_contain_text("yes")
    console.shot(page, "02-service")

    page.get_by_text("New configuration").click()
    page.get_by_label("Configuration name").fill("payroll-3tier")
    page.get_by_label("Networks (comma-separated)").fill("front, back")
    page.get_by_role("button", name="Create configuration").click()
    expect(page.get_by_role("heading", name="payroll-3tier")).to_be_visible()

    form = page.locator("#add-machine form")
    form.get_by_label("Machine name").fill("web1")
    form.get_by_label("Memory (MiB)").fill("1001")
    form.get_by_label("front").check()
    form.get_by_role("button", name="Add machine").click()
    memory_error = page.locator("#add-machine #new-memory + .field-error")
    expect(memory_error).to_contain_text("memory_mib must be a multiple of 4")
    console.shot(page, "03-machine-form-error")
    page.locator("#add-machine").get_by_label("Memory (MiB)").fill("2048")
    page.locator("#add-machine").get_by_role("button", name="Add machine").click()
    expect(page.locator("#machines + .table-wrap")).to_contain_text("2048 MiB")
    console.shot(page, "03-configuration-with-machine")


def test_deploy_progress_live_board_and_promote(console: Console) -> None:
    _, configuration_id = console.service("billing", "billing-app", [machine("web1"), machine("app1"), machine("db1")])
    board = console.page("alice", "alice-pw")
    board.evaluate("window.notReloaded = true")
    page = console.page("alice", "alice-pw")
    page.goto(f"{console.server.url}/ui/configurations/{configuration_id}")
    page.get_by_role("button", name="Deploy").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Stage").select_option("int")
    dialog.get_by_label("Reason").fill("release 7")
    dialog.get_by_role("button", name="Deploy").click()
    expect(page.get_by_role("heading", name="Machines")).to_be_visible()
    page.evaluate("window.notReloaded = true")
    bars = page.locator("progress")
    expect(bars).to_have_count(3)
    for name in ("web1", "app1", "db1"):
        expect(page.locator(f'[data-progress="{name}"]')).to_have_text("deployed", timeout=TIMEOUT_MS)
    for i in range(3):
        expect(bars.nth(i)).to_have_attribute("value", "100")
    expect(page.locator("#deployment-live .state").first).to_contain_text("deployed")
    assert page.evaluate("window.notReloaded") is True, "progress arrived without a reload"
    console.shot(page, "04-deployed")

    card = board.locator('.svc-row:has-text("billing") li[data-stage="int"] .card')
    expect(card).to_contain_text("billing-app")
    expect(card).to_contain_text("3 machines")
    assert board.evaluate("window.notReloaded") is True, "the board updated itself"
    console.shot(board, "05-board-live")

    page.get_by_role("button", name="Undeploy").focus()  # the keyboard opens and closes a confirmation
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_contain_text("Undeploy in int?")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    page.get_by_role("button", name="Promote").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Promote to test?")
    dialog.get_by_role("button", name="Promote").click()
    expect(page.locator("#deployment-live")).to_contain_text("in test", timeout=TIMEOUT_MS)
    expect(page.locator("#deployment-live .state").first).to_contain_text("deployed", timeout=TIMEOUT_MS)
    expect(board.locator('.svc-row:has-text("billing") li[data-stage="test"] .card')).to_contain_text("billing-app")
    expect(page.get_by_role("button", name="Promote")).to_have_count(0)  # prod is restricted: not offered
    console.shot(board, "06-board-after-promote")


def test_history_slider_diff_and_restore(console: Console) -> None:
    _, configuration_id = console.service("ledger", "ledger-app", [machine("web1", memory_mib=2048)])
    page = console.page("alice", "alice-pw")
    page.goto(f"{console.server.url}/ui/configurations/{configuration_id}")
    page.get_by_text("Edit web1").click()
    page.locator("#m-1-memory").fill("8192")
    page.get_by_role("button", name="Save web1").click()
    expect(page.locator(".page-head")).to_contain_text("version 2")
    definition = page.locator("#definition")
    expect(definition).to_contain_text("8192 MiB")
    slider = page.get_by_role("slider", name=re.compile("^Version"))
    slider.focus()
    slider.press("Home")  # the keyboard drags it to the first version
    expect(definition).to_contain_text("Version 1")
    expect(definition.locator('[data-field="memory"]')).to_have_text("2048 MiB")
    console.shot(page, "07-history-slider")

    page.get_by_label("Compare version").select_option("1")
    page.get_by_label("with version").select_option("2")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", name="Before: version 1")).to_be_visible()
    expect(page.locator(".changes")).to_contain_text("memory_mib: 2048 → 8192")
    console.shot(page, "08-diff")

    page.goto(f"{console.server.url}/ui/configurations/{configuration_id}")
    page.get_by_role("button", name="Restore").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Version").select_option("1")
    dialog.get_by_label("Reason").fill("roll back the memory")
    dialog.get_by_role("button", name="Restore").click()
    expect(page.locator(".page-head")).to_contain_text("version 3")
    expect(page.locator("#machines + .table-wrap")).to_contain_text("2048 MiB")
    expect(page.locator("#definition + .table-wrap")).to_contain_text("roll back the memory")


def test_audit_filters_and_export(console: Console, tmp_path: Path) -> None:
    service_id, _ = console.service("audited", "audited-app", [machine("web1")])
    page = console.page("alice", "alice-pw")
    page.get_by_role("link", name="Audit", exact=True).click()
    expect(page.locator("#chain")).to_contain_text("Chain head: position")
    page.get_by_role("button", name="Verify chain").click()
    expect(page.locator("#verdict")).to_contain_text("Verified up to position")
    page.get_by_label("Service").select_option(label="audited")
    page.get_by_label("Event type").fill("Configuration.")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#audit-entries tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Configuration.Defined")
    console.shot(page, "09-audit")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    target = tmp_path / "audit.csv"
    download.value.save_as(target)
    exported = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(r["event_type"], r["service_id"], r["actor"]) for r in exported] == [
        ("Configuration.Defined", service_id, "admin")
    ]


def test_a_viewer_sees_no_actions_a_forged_post_is_refused_and_sign_out_ends_the_session(console: Console) -> None:
    service_id, configuration_id = console.service("viewed", "viewed-app", [machine("web1")])
    deployment = console.api.post(f"/api/v1/configurations/{configuration_id}/deployments", json={"stage": "int"})
    deployment_id = deployment.json()["id"]
    page = console.page("victor", "victor-pw", width=390, keyboard=True)
    console.shot(page, "10-board-phone-width")
    for path in (
        f"/ui/services/{service_id}",
        f"/ui/configurations/{configuration_id}",
        f"/ui/deployments/{deployment_id}",
    ):
        page.goto(console.server.url + path)
        for verb in ("Deploy", "Promote", "Demote", "Undeploy", "Retry", "Restore", "Add machine", "Grant"):
            expect(page.get_by_role("button", name=verb, exact=True)).to_have_count(0)
    console.shot(page, "11-viewer-deployment")
    forged = page.request.post(f"{console.server.url}/ui/deployments/{deployment_id}/undeploy", form={"reason": "x"})
    assert forged.status == 403
    assert "security token" in forged.text()
    assert console.api.get(f"/api/v1/deployments/{deployment_id}").json()["state"] != "undeploying"
    copied = [c for c in page.context.cookies() if c["name"] == "sk_session"]
    assert len(copied) == 1
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(console.server.url + "/ui/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    # The cookie copied before signing out, replayed from another browser: refused by the server.
    other = console.browser.new_context()
    other.add_cookies([{"name": "sk_session", "value": copied[0]["value"], "url": console.server.url}])
    replay = other.new_page()
    replay.goto(console.server.url + "/ui/")
    expect(replay.get_by_role("button", name="Sign in")).to_be_visible()
    assert replay.url.startswith(console.server.url + "/ui/login")
    other.close()


def test_every_console_of_a_deployment_on_one_page_for_several_viewers(console: Console) -> None:
    """The simulated driver draws each machine's screen (name, state, IP); vcsim's tickets and
    screenshots are exercised by h-vcenter's tests of the pyvmomi driver."""
    _, configuration_id = console.service("tiles", "tiles-app", [machine("web1"), machine("app1"), machine("db1")])
    deployment_id = console.api.post(
        f"/api/v1/configurations/{configuration_id}/deployments", json={"stage": "int"}
    ).json()["id"]
    page = console.page("alice", "alice-pw")
    viewer = console.page("victor", "victor-pw")
    for each in (page, viewer):
        each.goto(f"{console.server.url}/ui/deployments/{deployment_id}")
        expect(each.locator("#deployment-live .state").first).to_contain_text("deployed", timeout=TIMEOUT_MS)
        tiles = each.locator(".tile")
        expect(tiles).to_have_count(3)
        for i in range(3):
            expect(tiles.nth(i).locator("img")).to_have_js_property("complete", True)
            assert tiles.nth(i).locator("img").evaluate("img => img.naturalWidth") > 0
    expect(viewer.get_by_role("link", name="Open console")).to_have_count(0)
    expect(viewer.get_by_role("button", name=re.compile("^Power"))).to_have_count(0)
    console.shot(page, "12-consoles")

    page.get_by_role("button", name="Power off app1").click()
    expect(page.locator('[data-power="app1"]')).to_have_text("○ powered off", timeout=TIMEOUT_MS)
    expect(viewer.locator('[data-power="app1"]')).to_have_text("○ powered off", timeout=TIMEOUT_MS)
    expect(page.get_by_role("button", name="Power on app1")).to_be_enabled()
    page.get_by_role("button", name="Power on app1").click()
    expect(page.locator('[data-power="app1"]')).to_have_text("● powered on", timeout=TIMEOUT_MS)

    # "Open console": a new tab on the HTML5 console page the ticket signs in to; with the simulated
    # vCenter that page is Stagekeeper's own, showing the simulation's picture of the machine.
    with page.context.expect_page() as opened:
        page.locator(".tile", has_text="web1").get_by_role("link", name="Open console").click()
    tab = opened.value
    expect(tab.get_by_role("heading", name=re.compile(r"^Simulated console of sk-"))).to_be_visible()
    expect(tab.get_by_text("Simulated vCenter.")).to_be_visible()
    assert re.search(r"/ui/simulated-vcenter/webconsole\.html\?vmId=vm-\d+&vmName=.+&sessionTicket=cst-SIM-", tab.url)
    screen = tab.get_by_role("img", name=re.compile(r"^Screen of .+ \(simulated\)$"))
    expect(screen).to_have_js_property("complete", True)
    assert screen.evaluate("img => img.naturalWidth") > 0  # the picture the simulation drew
    # Refreshed every 5 s with the same ticket (its address already has a query).
    tab.wait_for_function(
        "() => { const i = document.querySelector('img.screen');"
        " return i.src.includes('&t=') && i.complete && i.naturalWidth > 0; }",
        timeout=TIMEOUT_MS,
    )
    console.shot(tab, "13-html5-console-of-web1")
    with page.context.expect_page() as opened:
        page.locator(".tile", has_text="web1").get_by_role("link", name="VMware Remote Console").click()
    tab = opened.value
    expect(tab.get_by_role("heading", name="Console of web1")).to_be_visible()
    expect(tab.get_by_role("link", name="Open in VMware Remote Console")).to_have_attribute(
        "href", re.compile(r"^vmrc://clone:[0-9a-f]+@")
    )
    expect(tab.get_by_role("link", name="Open HTML5 console")).to_have_attribute(
        "href", re.compile(r"^/ui/simulated-vcenter/webconsole\.html\?vmId=")
    )
    expect(tab.get_by_label("HTML5 console (WebMKS) address")).to_have_value(re.compile(r"^wss://.+/ticket/"))
    console.shot(tab, "14-ticket-of-web1")
    audit = console.api.get("/api/v1/audit", params={"deployment": deployment_id, "limit": 100}).json()["items"]
    kinds = {(e["event_type"], e["actor"]) for e in audit}
    assert ("Deployment.ConsoleOpened", "alice") in kinds
    assert [e["event_type"] for e in audit].count("Deployment.ConsoleOpened") == 2, "each opening is audited"
    assert ("Deployment.PowerRequested", "alice") in kinds


def test_retry_from_the_console_brings_a_failed_deployment_to_deployed(console: Console) -> None:
    """A deployment fails for want of addresses (stage int's pool holds one, the configuration
    needs two); once the pool is widened, "Retry" on its page provisions it again."""
    pool = {"cidr": "10.77.0.0/24", "gateway": "10.77.0.1", "first": "10.77.0.10", "last": "10.77.0.10"}
    int_stage = {"name": "int", "resource_pool": f"{ROOT_POOL}/retried-int", "ip_pools": [pool]}
    service = console.api.post("/api/v1/services", json={"name": "retried", "stages": [int_stage]})
    assert service.status_code == 201, service.text
    service_id = service.json()["id"]
    made = console.api.post(
        f"/api/v1/services/{service_id}/configurations",
        json={"name": "retried-app", "networks": [{"name": "front"}], "machines": [machine("web1"), machine("app1")]},
    )
    assert made.status_code == 201, made.text
    deployed = console.api.post(f"/api/v1/configurations/{made.json()['id']}/deployments", json={"stage": "int"})
    deployment_id = deployed.json()["id"]
    page = console.page("alice", "alice-pw")
    page.goto(f"{console.server.url}/ui/deployments/{deployment_id}")
    expect(page.locator("#deployment-live .state").first).to_contain_text("failed", timeout=TIMEOUT_MS)
    expect(page.get_by_role("alert")).to_contain_text("has no free address")
    console.shot(page, "15-deployment-failed")

    page.get_by_role("button", name="Retry", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Retry in int?")
    # The pool is widened while the confirmation is open: the change announced meanwhile must not
    # redraw the page under the dialog.
    wider = {**pool, "last": "10.77.0.20"}
    widened = console.api.patch(f"/api/v1/services/{service_id}/stages/int", json={"ip_pools": [wider]})
    assert widened.status_code == 200, widened.text
    page.wait_for_timeout(500)
    expect(dialog).to_be_visible()
    dialog.get_by_label("Reason").fill("pool widened")
    dialog.get_by_role("button", name="Retry").click()
    expect(page.locator("#deployment-live .state").first).to_contain_text("deployed", timeout=TIMEOUT_MS)
    for name in ("web1", "app1"):
        expect(page.locator(f'[data-progress="{name}"]')).to_have_text("deployed", timeout=TIMEOUT_MS)
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_role("button", name="Retry", exact=True)).to_have_count(0)
    console.shot(page, "16-deployment-retried")
    view = console.api.get(f"/api/v1/deployments/{deployment_id}").json()
    assert (view["state"], view["attempt"]) == ("deployed", 2)
    audit = console.api.get("/api/v1/audit", params={"deployment": deployment_id, "limit": 100}).json()["items"]
    assert ("Deployment.RetryRequested", "alice", "pool widened") in {
        (e["event_type"], e["actor"], e["reason"]) for e in audit
    }
