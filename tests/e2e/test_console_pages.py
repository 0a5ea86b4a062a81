"""The console without a browser: sign-in, sessions, assets, page weight, inline errors, audit actor."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from api.ui.boardcache import BoardCache
from api.ui.session import COOKIE, Session, SessionCodec
from projections.audit_queries import AuditFilter
from tests.e2e.test_console_access import PRINCIPALS, World, build_world
from tests.support import runtime_for, settings_for

STATIC = Path(__file__).parents[2] / "api" / "ui" / "static"
# htmx.org 2.0.11 from the npm registry (`npm pack htmx.org@2`, package/dist/htmx.min.js).
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


@pytest.fixture
def world() -> Iterator[World]:
    built = build_world()
    yield built
    built.runtime.close()


def sign_in_form(client: TestClient, username: str, password: str, target: str = "/ui/") -> TestClient:
    page = client.get("/ui/login", params={"next": target})
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    client.post(
        "/ui/login",
        data={"username": username, "password": password, "csrf": csrf.group(1), "next": target},
        follow_redirects=False,
    )
    return client


def test_the_vendored_htmx_is_the_pinned_release() -> None:
    assert hashlib.sha256((STATIC / "htmx-2.0.11.min.js").read_bytes()).hexdigest() == HTMX_SHA256


def test_the_root_goes_to_the_console_and_the_console_to_sign_in(world: World) -> None:
    assert world.client.get("/", follow_redirects=False).headers["location"] == "/ui/"
    to_login = world.client.get("/ui/audit?actor=x", follow_redirects=False)
    assert to_login.status_code == 303
    assert to_login.headers["location"] == "/ui/login?next=/ui/audit%3Factor%3Dx"


def test_the_board_page_with_every_asset_weighs_under_200_kb(world: World) -> None:
    world.sign_in("admin")
    page = world.client.get("/ui/")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page.text)
    assert {"/ui/static/console.css", "/ui/static/htmx-2.0.11.min.js", "/ui/static/console.js"} <= set(assets)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text), "no asset from another host"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    weight = len(page.content) + sum(len(world.client.get(a).content) for a in assets)
    assert weight < 200_000, weight


def test_signing_in_as_the_local_admin_sets_a_strict_http_only_cookie(world: World) -> None:
    client = world.client
    page = client.get("/ui/login")
    for text in ('<label for="username">Username</label>', '<label for="password">Password</label>', ">Sign in<"):
        assert text in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    wrong = client.post("/ui/login", data={"username": "admin", "password": "guess", "csrf": csrf.group(1)})
    assert wrong.status_code == 401
    assert "Wrong username or password." in wrong.text
    page = client.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    right = client.post(
        "/ui/login",
        data={"username": "admin", "password": "secret-pw", "csrf": csrf.group(1), "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert right.status_code == 303
    assert right.headers["location"] == "/ui/", "never an open redirect"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith(COOKIE + "=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    board = client.get("/ui/")
    assert board.status_code == 200
    assert "local administrator" in board.text


def test_the_sign_in_form_without_its_token_is_refused(world: World) -> None:
    refused = world.client.post("/ui/login", data={"username": "admin", "password": "secret-pw", "csrf": "x"})
    assert refused.status_code == 403
    assert COOKIE not in refused.headers.get("set-cookie", "")


def test_a_session_idle_longer_than_the_timeout_is_signed_out(world: World) -> None:
    codec = world.client.app.state.console.codec  # type: ignore[attr-defined]
    principal = PRINCIPALS["admin"]
    assert principal is not None
    idle = Session.start(principal, time.time() - codec.idle_seconds - 1)
    world.client.cookies.set(COOKIE, codec.encode(idle))
    expired = world.client.get("/ui/", follow_redirects=False)
    assert expired.status_code == 303
    assert "inactivity" in world.client.get(expired.headers["location"]).text
    fresh = Session.start(principal, time.time() - codec.idle_seconds + 30)
    world.client.cookies.clear()
    world.client.cookies.set(COOKIE, codec.encode(fresh))
    refreshed = world.client.get("/ui/", follow_redirects=False)
    assert refreshed.status_code == 200
    assert COOKIE in refreshed.headers.get("set-cookie", ""), "a used session is re-dated"
    tampered = codec.encode(fresh).replace(".", "x.", 1)
    world.client.cookies.clear()
    world.client.cookies.set(COOKIE, tampered)
    assert world.client.get("/ui/", follow_redirects=False).status_code == 303


def test_the_generated_signing_key_is_kept_in_the_database_and_shared(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sk.db"
    first = runtime_for(url)
    first.ensure_admin()
    client = TestClient(create_app(settings_for(url), runtime=first, start_workers=False))
    sign_in_form(client, "admin", "secret-pw")
    cookie = client.cookies[COOKIE]
    first.close()
    second: Runtime = runtime_for(url)
    try:
        other = TestClient(create_app(settings_for(url), runtime=second, start_workers=False))
        other.cookies.set(COOKIE, cookie)
        assert other.get("/ui/", follow_redirects=False).status_code == 200, "a restart keeps sessions"
        keyed = runtime_for("memory://", session_secret="another-key")
        try:
            stranger = TestClient(create_app(settings_for("memory://"), runtime=keyed, start_workers=False))
            stranger.cookies.set(COOKIE, cookie)
            assert stranger.get("/ui/", follow_redirects=False).status_code == 303
        finally:
            keyed.close()
    finally:
        second.close()


def test_a_wrong_machine_field_shows_the_domain_message_next_to_it(world: World) -> None:
    csrf = world.sign_in("owner")
    configuration = world.ids["{configuration_id}"]
    form = {"csrf": csrf, "name": "web9", "template": "tpl-ubuntu-2404", "cpus": "2", "memory_mib": "1001"}
    page = world.client.post(f"/ui/configurations/{configuration}/machines", data=form)
    assert page.status_code == 422
    field = re.search(r'<div class="field"><label for="new-memory">.*?</div>', page.text, re.S)
    assert field is not None
    assert 'aria-invalid="true"' in field.group(0)
    assert "machine.memory_mib must be a multiple of 4" in field.group(0)
    assert 'value="web9"' in page.text, "what was typed stays in the form"
    machines = world.runtime.app.configuration(UUID(configuration)).machines
    assert [m["name"] for m in machines] == ["web1", "app1"], "nothing half-applied"


def test_console_actions_are_audited_with_the_signed_in_user(world: World) -> None:
    csrf = world.sign_in("owner")
    service = world.ids["{service_id}"]
    done = world.client.post(
        f"/ui/services/{service}/description", data={"csrf": csrf, "description": "Payroll", "reason": "clarity"},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303
    world.runtime.catch_up()
    entries, _ = world.runtime.audit.page(AuditFilter(event_type="Service.DescriptionChanged"), None, 10)
    assert [(e["actor"], e["reason"]) for e in entries] == [("olivia", "clarity")]


def test_a_session_codec_refuses_a_cookie_signed_with_another_key() -> None:
    principal = PRINCIPALS["viewer"]
    assert principal is not None
    session = Session.start(principal, time.time())
    ours, theirs = SessionCodec(b"k1", 600), SessionCodec(b"k2", 600)
    assert ours.decode(ours.encode(session), time.time()) == session
    assert theirs.decode(ours.encode(session), time.time()) is None


def test_the_board_filters_pages_lists_and_redraws_a_past_instant(world: World) -> None:
    world.sign_in("admin")
    app, configuration = world.runtime.app, UUID(world.ids["{configuration_id}"])
    time.sleep(1.05)  # the slider moves in whole seconds
    before = int(time.time())
    time.sleep(1.05)
    mine = app.deploy(configuration, "test", actor="alice").value.id
    world.runtime.catch_up()
    board = world.client.get("/ui/").text
    assert board.count('class="card"') == 2
    assert f'data-deployment="{mine}"' in world.client.get("/ui/", params={"mine": "true"}).text
    assert world.client.get("/ui/", params={"mine": "true", "stage": "int"}).text.count('class="card"') == 0
    assert world.client.get("/ui/", params={"owner": "setup"}).text.count('class="card"') == 1
    assert "Nothing to show" in world.client.get("/ui/", params={"service": "no-such"}).text
    listed = world.client.get("/ui/", params={"view": "list"}).text
    assert listed.count("<tr data-deployment=") == 2
    filtered = world.client.get(
        "/ui/board", params={"state": "deployed", "mine": "true"}, headers={"HX-Request": "true"}
    )
    assert filtered.headers["hx-push-url"] == "/ui/?state=deployed&mine=1"
    past = world.client.get("/ui/board", params={"as_of": str(before)}).text
    assert "As of" in past
    assert 'data-live="' not in past, "a past board is not redrawn live"
    assert f'data-deployment="{mine}"' not in past
    assert f'data-deployment="{world.ids["{deployment_id}"]}"' in past
    bad = world.client.get("/ui/", params={"state": "sleeping"})
    assert bad.status_code == 422
    assert "state must be one of" in bad.text


def test_the_board_pages_through_many_services(world: World) -> None:
    world.sign_in("admin")
    for i in range(30):
        world.runtime.app.register_service(
            f"svc-{i:02d}", "", [{"name": "int", "resource_pool": f"/DC0/host/DC0_C0/Resources/p{i}"}], actor="setup"
        )
    world.runtime.catch_up()
    first = world.client.get("/ui/").text
    assert "Page 1 of 2" in first
    assert first.count('class="svc-row"') == 25
    second = world.client.get("/ui/", params={"page": "2"}).text
    assert second.count('class="svc-row"') == 6


def test_the_audit_page_filters_pages_and_exports_what_the_user_may_read(world: World) -> None:
    world.runtime.app.register_service(
        "secret-project", "", [{"name": "int", "resource_pool": "/DC0/host/DC0_C0/Resources/s"}], actor="setup"
    )
    world.runtime.catch_up()
    world.sign_in("viewer")
    page = world.client.get("/ui/audit").text
    assert "secret-project" not in page
    assert "payroll" in page
    exported = world.client.get("/ui/audit/export", params={"format": "jsonl"})
    assert exported.headers["content-disposition"] == 'attachment; filename="stagekeeper-audit.jsonl"'
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert lines
    assert {line["service_id"] for line in lines} == {world.ids["{service_id}"]}
    later = world.client.get("/ui/audit", params={"from": "2999-01-01T00:00:00"}).text
    assert "No entry matches." in later
    first = world.client.get("/ui/audit", params={"actor": "setup", "limit": "5"}).text
    older = re.search(r'href="/ui/audit\?([^"]+)" rel="next"', first)
    assert older is not None, "more than one page of entries by setup"
    second = world.client.get("/ui/audit?" + older.group(1).replace("&amp;", "&")).text
    positions = [int(p) for p in re.findall(r'<td class="num">(\d+)</td>', first + second)]
    assert positions == sorted(positions, reverse=True)
    assert len(positions) == len(set(positions))
    bad = world.client.get("/ui/audit", params={"from": "yesterday"})
    assert bad.status_code == 422
    assert "from must be an ISO 8601 time" in bad.text
    assert world.client.get("/ui/audit/verify").status_code == 403
    deployment = world.client.get("/ui/audit", params={"deployment": world.ids["{deployment_id}"]}).text
    assert "Deployment.Requested" in deployment
    assert "Service.Registered" not in deployment


def test_promote_and_demote_confirmations_name_the_target_stage_and_act(world: World) -> None:
    csrf = world.sign_in("owner")
    deployment = world.ids["{deployment_id}"]
    page = world.client.get(f"/ui/deployments/{deployment}").text
    assert "Promote to test?" in page
    assert "Demote" not in page, "int is the first stage"
    assert world.client.post(f"/ui/deployments/{deployment}/promote", data={"csrf": csrf}).status_code == 200
    world.runtime.catch_up()
    page = world.client.get(f"/ui/deployments/{deployment}").text
    assert "in <strong>test</strong>" in page
    assert "Demote to int?" in page
    assert "Promote to prod?" not in page, "prod is restricted: only its stage operators promote into it"
    forged = world.client.post(f"/ui/deployments/{deployment}/promote", data={"csrf": csrf}, follow_redirects=False)
    assert forged.status_code == 403
    assert "restricted" in forged.text
    done = world.client.post(
        f"/ui/deployments/{deployment}/demote", data={"csrf": csrf, "reason": "rollback"}, follow_redirects=False
    )
    assert done.status_code == 303
    world.runtime.catch_up()
    assert world.runtime.app.deployment(UUID(deployment)).stage == "int"
    configuration = world.client.get(f"/ui/configurations/{world.ids['{configuration_id}']}").text
    assert f'<a href="/ui/deployments/{deployment}">v2 in int</a>' in configuration
    entries, _ = world.runtime.audit.page(AuditFilter(event_type="Deployment.MoveRequested"), None, 10)
    assert [(e["actor"], e["reason"]) for e in entries] == [("olivia", "rollback"), ("olivia", None)]


def test_the_board_now_is_shared_until_a_read_model_moves_and_never_across_permissions(world: World) -> None:
    cache, runtime = BoardCache(), world.runtime
    admin, viewer = PRINCIPALS["admin"], PRINCIPALS["viewer"]
    assert admin is not None
    assert viewer is not None
    runtime.app.register_service(
        "secret-project", "", [{"name": "int", "resource_pool": "/DC0/host/DC0_C0/Resources/x"}], actor="setup"
    )
    runtime.catch_up()
    first = cache.now(runtime, admin, None)
    assert cache.now(runtime, admin, None)["services"] == first["services"]
    assert cache.live(runtime) is cache.live(runtime), "nothing moved: the same board"
    seen_by_viewer = cache.now(runtime, viewer, None)
    assert [s["name"] for s in seen_by_viewer["services"]] == ["payroll"]
    assert sorted(s["name"] for s in first["services"]) == ["payroll", "secret-project"]
    deployed = runtime.app.deploy(UUID(world.ids["{configuration_id}"]), "test", actor="alice")
    runtime.catch_up()
    after = cache.now(runtime, admin, deployed.position)
    assert after["position"] > first["position"]
    payroll = next(s for s in after["services"] if s["name"] == "payroll")
    test_stage = next(st for st in payroll["stages"] if st["name"] == "test")
    assert [d["id"] for d in test_stage["deployments"]] == [str(deployed.value.id)]


def test_the_navigation_has_a_place_for_fences_leases_archives_and_resources(world: World) -> None:
    world.sign_in("viewer")
    board = world.client.get("/ui/").text
    for path, title, promise in (
        ("/ui/copies", "Copies &amp; fences", "fenced network"),
        ("/ui/leases", "Leases", "This list is a dry run"),
        ("/ui/archives", "Archives", "Archive Now"),
        ("/ui/resources", "Resources", "allocated from the event history"),
    ):
        assert f'<a href="{path}">{title}</a>' in board, path
        page = world.client.get(path)
        assert page.status_code == 200
        assert f'<a href="{path}" aria-current="page">{title}</a>' in page.text
        assert f"<h1>{title}</h1>" in page.text
        assert promise in page.text
        assert "Coming with the next capabilities" not in page.text
