"""Single sign-on against a real OpenID Connect provider (node oidc-provider, scripts/oidc_harness.py):
the authorization code flow with PKCE is driven over HTTP through the provider's own login and
consent pages, as a browser would; the console is the real app (in-process client)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.simulated import SimulatedVCenter
from api.app import create_app
from projections.audit_queries import AuditFilter
from scripts.oidc_harness import OidcProviderProcess, log_in, start
from tests.support import FixedClock, stages

BASE = "http://testserver"
CALLBACK = BASE + "/ui/oidc/callback"

pytestmark = pytest.mark.slow


@dataclass
class World:
    provider: OidcProviderProcess
    runtime: Runtime
    clock: FixedClock
    payroll: UUID
    hr: UUID

    clients: list[TestClient]

    def client(self) -> TestClient:
        """A browser: its own cookies, on the app with its workers (read models follow writes)."""
        client = TestClient(create_app(self.runtime.settings, runtime=self.runtime))
        client.__enter__()
        self.clients.append(client)
        return client

    def refusals(self) -> list[dict[str, object]]:
        self.runtime.catch_up()
        rows, _ = self.runtime.audit.page(AuditFilter(event_type="Refusal.Recorded"), None, 100)
        return list(rows)


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProviderProcess]:
    process = start(CALLBACK)
    yield process
    process.stop()


@pytest.fixture
def world(provider: OidcProviderProcess) -> Iterator[World]:
    settings = Settings(
        database_url="memory://", admin_password="secret-pw", poll_seconds=0.05,
        oidc_issuer=provider.issuer, oidc_client_id=provider.client_id, oidc_client_secret=provider.client_secret,
        oidc_allowed_groups="stagekeeper-users, payroll ops", oidc_admin_group="stagekeeper-admins",
        oidc_provider_name="Test IdP", session_secret="a-session-key-shared-by-restarts",
    )  # fmt: skip
    clock = FixedClock(datetime.now(UTC))  # the provider's tokens are dated by the real time
    runtime = Runtime(settings, vcenter=SimulatedVCenter(), clock=clock)
    payroll = runtime.app.register_service("payroll", "", stages("int"), actor="setup").value.id
    hr = runtime.app.register_service("hr", "", stages("int", pools="hr"), actor="setup").value.id
    # The provider's group name, with a space, exactly as it is sent.
    runtime.app.grant_role(payroll, "viewer", None, "oidc:payroll ops", None, actor="setup")
    runtime.catch_up()
    world = World(provider, runtime, clock, payroll, hr, [])
    yield world
    for client in world.clients:
        client.__exit__(None, None, None)
    runtime.close()


def start_sign_in(client: TestClient, target: str = "/ui/") -> str:
    """The provider's authorization URL the console sends the browser to (its cookie kept)."""
    page = client.get("/ui/login", params={"next": target})
    assert "Sign in with Test IdP" in page.text
    started = client.get("/ui/oidc/login", params={"next": target}, follow_redirects=False)
    assert started.status_code == 303
    return str(started.headers["location"])


def sign_in(client: TestClient, login: str, target: str = "/ui/") -> httpx.Response:
    callback = log_in(start_sign_in(client, target), login, CALLBACK)
    response: httpx.Response = client.get(callback.removeprefix(BASE), follow_redirects=False)
    return response


def test_the_flow_uses_pkce_s256_state_and_nonce(world: World) -> None:
    query = parse_qs(urlsplit(start_sign_in(world.client())).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32
    assert len(query["nonce"][0]) >= 32
    assert query["redirect_uri"] == [CALLBACK]
    assert query["response_type"] == ["code"]


def test_a_user_in_an_allowed_group_sees_only_the_services_their_groups_hold_roles_on(world: World) -> None:
    client = world.client()
    done = sign_in(client, "alice", target=f"/ui/services/{world.payroll}")
    assert done.status_code == 200, done.text
    assert f'content="0;url=/ui/services/{world.payroll}"' in done.text
    board = client.get("/ui/")
    assert board.status_code == 200
    assert "Alice Payroll" in board.text
    assert f'href="/ui/services/{world.payroll}">payroll<' in board.text
    assert f"/ui/services/{world.hr}" not in board.text
    assert client.get(f"/ui/services/{world.payroll}").status_code == 200
    refused = client.get(f"/ui/services/{world.hr}")
    assert refused.status_code == 403
    assert "oidc:alice holds no role on service" in refused.text
    assert client.get("/ui/users").status_code == 403  # not an administrator


def test_an_sso_user_creates_an_api_token_that_keeps_the_groups_of_the_sign_in(world: World) -> None:
    client = world.client()
    assert sign_in(client, "alice").status_code == 200
    page = client.get("/ui/tokens")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    made = client.post("/ui/tokens", data={"csrf": csrf.group(1), "name": "ci", "expires_in_days": "7"})
    found = re.search(r'id="token-value">([^<]+)<', made.text)
    assert made.status_code == 200
    assert found is not None
    api = TestClient(client.app, headers={"Authorization": f"Bearer {found.group(1)}"})
    me = api.get("/api/v1/me").json()
    assert me["user"] == "oidc:alice"
    assert not me["admin"]
    assert set(me["groups"]) == {"oidc:stagekeeper-users", "oidc:payroll ops"}
    assert [s["name"] for s in api.get("/api/v1/services").json()["items"]] == ["payroll"]
    assert api.get(f"/api/v1/services/{world.hr}").status_code in (403, 404)
    back = re.search(r'href="(/ui/tokens\?at=\d+)"', made.text)
    assert back is not None
    listed = client.get(back.group(1))
    revoke = re.search(r'action="(/ui/tokens/[0-9a-f-]+/revoke)"', listed.text)
    assert revoke is not None
    assert "<td>ci</td>" in listed.text
    assert client.post(revoke.group(1), data={"csrf": csrf.group(1)}).status_code == 200
    assert api.get("/api/v1/me").status_code == 401


def test_the_admin_group_gives_admin(world: World) -> None:
    client = world.client()
    assert sign_in(client, "carol").status_code == 200
    assert client.get("/ui/users").status_code == 200
    board = client.get("/ui/").text
    assert f"/ui/services/{world.payroll}" in board
    assert f"/ui/services/{world.hr}" in board
    assert '<span class="tag">admin</span>' in board


def test_a_user_outside_the_allowed_groups_is_refused_and_the_refusal_audited(world: World) -> None:
    client = world.client()
    refused = sign_in(client, "bob")
    assert refused.status_code == 403
    assert "oidc:bob is not in any group allowed to sign in" in refused.text
    assert client.get("/ui/", follow_redirects=False).status_code == 303  # no session
    last = world.refusals()[0]
    assert last["actor"] == "oidc:bob"
    assert "group_not_allowed" in str(last["summary"])


def test_a_tampered_state_is_refused_and_audited(world: World) -> None:
    client = world.client()
    callback = log_in(start_sign_in(client), "alice", CALLBACK)
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    query["state"] = query["state"][:-2] + ("AA" if not query["state"].endswith("AA") else "BB")
    refused = client.get("/ui/oidc/callback?" + urlencode(query), follow_redirects=False)
    assert refused.status_code == 403
    assert "does not belong to this sign-in" in refused.text
    assert client.get("/ui/", follow_redirects=False).status_code == 303
    assert "state_mismatch" in str(world.refusals()[0]["summary"])


def test_a_callback_in_another_browser_is_refused(world: World) -> None:
    callback = log_in(start_sign_in(world.client()), "alice", CALLBACK)
    other = world.client()  # no sign-in cookie: a code sent to someone else's browser
    refused = other.get(callback.removeprefix(BASE), follow_redirects=False)
    assert refused.status_code == 403
    assert "not started in this browser" in refused.text
    assert other.get("/ui/", follow_redirects=False).status_code == 303


def test_a_code_is_good_once(world: World) -> None:
    client = world.client()
    callback = log_in(start_sign_in(client), "alice", CALLBACK)
    jar = dict(client.cookies)
    assert client.get(callback.removeprefix(BASE), follow_redirects=False).status_code == 200
    replay = world.client()
    replay.cookies.update({"sk_oidc": jar["sk_oidc"]})
    refused = replay.get(callback.removeprefix(BASE), follow_redirects=False)
    assert refused.status_code == 401
    assert "refused the authorization code" in refused.text


def test_an_answer_naming_another_issuer_is_refused(world: World) -> None:
    client = world.client()
    callback = log_in(start_sign_in(client), "alice", CALLBACK)
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert query["iss"] == world.provider.issuer  # RFC 9207, sent by this provider
    query["iss"] = "https://impostor.example.com"
    refused = client.get("/ui/oidc/callback?" + urlencode(query), follow_redirects=False)
    assert refused.status_code == 403
    assert "another provider" in refused.text
    assert "issuer_mismatch" in str(world.refusals()[0]["summary"])


def test_sessions_of_sso_users_end_when_single_sign_on_is_switched_off(world: World) -> None:
    client = world.client()
    assert sign_in(client, "alice").status_code == 200
    assert client.get("/ui/", follow_redirects=False).status_code == 200
    # Restarted with the same session key, without single sign-on.
    without = world.runtime.settings.model_copy(update={"oidc_issuer": None})
    runtime = Runtime(without, vcenter=SimulatedVCenter())
    try:
        restarted = TestClient(create_app(without, runtime=runtime, start_workers=False), cookies=client.cookies)
        assert restarted.get("/ui/", follow_redirects=False).status_code == 303
        assert "Sign in with" not in restarted.get("/ui/login").text
    finally:
        runtime.close()


def test_a_sign_in_that_takes_longer_than_ten_minutes_is_refused(world: World) -> None:
    client = world.client()
    callback = log_in(start_sign_in(client), "alice", CALLBACK)
    world.clock.advance(minutes=10, seconds=30)
    refused = client.get(callback.removeprefix(BASE), follow_redirects=False)
    assert refused.status_code == 403
    assert "took longer than ten minutes" in refused.text
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_an_id_token_past_its_lifetime_is_refused(world: World) -> None:
    # Stagekeeper's clock two hours ahead of the provider's: its ID tokens (one hour) have expired.
    world.clock.advance(hours=2)
    client = world.client()
    callback = log_in(start_sign_in(client), "alice", CALLBACK)
    refused = client.get(callback.removeprefix(BASE), follow_redirects=False)
    assert refused.status_code == 401
    assert "could not be verified" in refused.text
    assert "exp" in refused.text
    assert "bad_token" in str(world.refusals()[0]["summary"])


def test_an_unreachable_provider_is_a_503_page_and_no_provider_a_404(world: World) -> None:
    for issuer, status, words in (("http://127.0.0.1:9", 503, "Single sign-on is unavailable"),
                                  (None, 404, "not configured")):  # fmt: skip
        settings = world.runtime.settings.model_copy(update={"oidc_issuer": issuer})
        runtime = Runtime(settings, vcenter=SimulatedVCenter())
        try:
            client = TestClient(create_app(settings, runtime=runtime, start_workers=False))
            answer = client.get("/ui/oidc/login", follow_redirects=False)
            assert answer.status_code == status
            assert words in answer.text
            runtime.catch_up()
            refusals, _ = runtime.audit.page(AuditFilter(event_type="Refusal.Recorded"), None, 10)
            assert refusals == []  # nobody was refused: the server could not offer it
        finally:
            runtime.close()
