"""Single sign-on in a real browser (Debian's Chromium, headless, Playwright) against a real
`stagekeeper serve` and a real OpenID Connect provider (node oidc-provider), through the provider's
own login and consent pages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from scripts.oidc_harness import OidcProviderProcess, start
from tests.e2e.conftest import Server, free_port, start_server_at, stop_server
from tests.e2e.test_console_browser import CHROMIUM, FLAGS, TIMEOUT_MS
from tests.support import stages

pytestmark = pytest.mark.slow


@dataclass
class Setup:
    server: Server
    provider: OidcProviderProcess
    browser: Browser
    shots: Path
    payroll: str
    hr: str
    errors: list[str]

    def sign_in(self, login: str) -> Page:
        page = self.browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(self.server.url + "/ui/")
        page.get_by_role("link", name="Sign in with Test IdP").click()
        # The provider's own pages (devInteractions): a login form, then a consent form.
        page.locator('input[name="login"]').fill(login)
        page.locator('input[name="password"]').fill("any-password")
        page.locator('button[type="submit"]').click()
        page.locator('button[type="submit"]', has_text="Continue").click()
        return page


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    where = tmp_path_factory.mktemp("oidc-console")
    port = free_port()
    provider = start(f"http://127.0.0.1:{port}/ui/oidc/callback")
    env = {
        "STAGEKEEPER_OIDC_ISSUER": provider.issuer, "STAGEKEEPER_OIDC_CLIENT_ID": provider.client_id,
        "STAGEKEEPER_OIDC_CLIENT_SECRET": provider.client_secret,
        "STAGEKEEPER_OIDC_ALLOWED_GROUPS": "stagekeeper-users", "STAGEKEEPER_OIDC_ADMIN_GROUP": "stagekeeper-admins",
        "STAGEKEEPER_OIDC_PROVIDER_NAME": "Test IdP",
    }  # fmt: skip
    server = start_server_at(port, f"sqlite:///{where}/sk.db", where / "server.log", **env)
    shots = where / "screenshots"
    shots.mkdir()
    with httpx.Client(base_url=server.url, auth=("admin", "secret-pw"), timeout=30) as api:
        ids = []
        for name in ("payroll", "hr"):
            made = api.post("/api/v1/services", json={"name": name, "stages": stages("int", pools=name)})
            assert made.status_code == 201, made.text
            ids.append(str(made.json()["id"]))
        grant = {"role": "viewer", "group": "oidc:payroll ops"}
        assert api.post(f"/api/v1/services/{ids[0]}/grants", json=grant).status_code == 201
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield Setup(server, provider, browser, shots, ids[0], ids[1], [])
        finally:
            browser.close()
            stop_server(server)
            provider.stop()


def test_a_user_signs_in_through_the_provider_and_sees_only_services_their_groups_hold(setup: Setup) -> None:
    page = setup.sign_in("alice")
    expect(page.get_by_role("heading", name="Board")).to_be_visible()
    expect(page.locator(".who")).to_contain_text("Alice Payroll")
    expect(page.get_by_role("link", name="payroll", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="hr", exact=True)).to_have_count(0)
    page.screenshot(path=str(setup.shots / "oidc-board.png"), full_page=True)
    # An API token from the console, for scripts.
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#token-value").inner_text()
    me = httpx.get(setup.server.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.json()["user"] == "oidc:alice"
    assert setup.errors == []


def test_the_admin_group_gives_admin_in_the_browser(setup: Setup) -> None:
    page = setup.sign_in("carol")
    expect(page.locator(".who")).to_contain_text("admin")
    expect(page.get_by_role("link", name="Users")).to_be_visible()
    expect(page.get_by_role("link", name="hr", exact=True)).to_be_visible()


def test_a_user_outside_the_allowed_groups_sees_why(setup: Setup) -> None:
    page = setup.sign_in("bob")
    expect(page.get_by_role("heading", name="Sign-in refused")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("oidc:bob is not in any group allowed to sign in")
    page.screenshot(path=str(setup.shots / "oidc-refused.png"), full_page=True)
    page.goto(setup.server.url + "/ui/")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
