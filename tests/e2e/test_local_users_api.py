"""Local users over HTTP: administrators manage them, grants to local groups give roles, lockout
is audited, the console signs them in, and a disabled user's console session ends."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from tests.e2e.conftest import AUTH
from tests.e2e.test_console_pages import sign_in_form
from tests.support import settings_for, stages

PASSWORD = "correct horse battery"
OLIVIA = ("olivia", PASSWORD)


def test_administrators_manage_local_users_and_grants_to_their_groups_give_roles(
    client: TestClient, runtime: Runtime
) -> None:
    made = client.post(
        "/api/v1/users", auth=AUTH,
        json={"username": "olivia", "password": PASSWORD, "groups": ["payroll-team"], "display_name": "Olivia"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["group_dns"] == ["cn=payroll-team,ou=local-groups,o=stagekeeper"]
    weak = client.post("/api/v1/users", auth=AUTH, json={"username": "petra", "password": "petra-petra-1"})
    assert weak.status_code == 422
    assert weak.json()["error"]["field"] == "password"
    again = client.post("/api/v1/users", auth=AUTH, json={"username": "olivia", "password": PASSWORD})
    assert again.status_code == 409
    assert client.post("/api/v1/users", auth=OLIVIA, json={"username": "eve", "password": PASSWORD}).status_code == 403

    payroll = client.post("/api/v1/services", auth=AUTH, json={"name": "payroll", "stages": stages("int")}).json()
    client.post("/api/v1/services", auth=AUTH, json={"name": "secret", "stages": stages("int", pools="s-")})
    granted = client.post(
        f"/api/v1/services/{payroll['id']}/grants", auth=AUTH,
        json={"role": "viewer", "group": made.json()["group_dns"][0], "reason": "the payroll team reads it"},
    )  # fmt: skip
    assert granted.status_code == 201, granted.text
    runtime.catch_up()
    assert client.get(f"/api/v1/services/{payroll['id']}", auth=OLIVIA).status_code == 200
    listed = client.get("/api/v1/services", auth=OLIVIA).json()["items"]
    assert [s["name"] for s in listed] == ["payroll"]
    assert client.get("/api/v1/me", auth=OLIVIA).json()["roles"][0]["role"] == "viewer"
    # Not in the group any more: no role.
    client.patch("/api/v1/users/olivia", auth=AUTH, json={"groups": [], "reason": "moved team"})
    assert client.get(f"/api/v1/services/{payroll['id']}", auth=OLIVIA).status_code == 403

    users = client.get("/api/v1/users", auth=AUTH).json()["items"]
    assert {u["username"] for u in users} == {"admin", "olivia"}
    assert client.get("/api/v1/users", auth=OLIVIA).status_code == 403
    assert client.get("/api/v1/users/olivia", auth=OLIVIA).json()["display_name"] == "Olivia"


def test_lockout_is_audited_and_an_administrator_unlocks(client: TestClient, runtime: Runtime) -> None:
    client.post("/api/v1/users", auth=AUTH, json={"username": "olivia", "password": PASSWORD})
    for _ in range(5):
        assert client.get("/api/v1/me", auth=("olivia", "guess")).status_code == 401
    locked = client.get("/api/v1/me", auth=OLIVIA)
    assert locked.status_code == 401
    assert "locked until" in locked.json()["error"]["message"]
    runtime.catch_up()
    audit = client.get("/api/v1/audit", auth=AUTH, params={"type": "LocalAccount.LockedOut"}).json()["items"]
    assert [e["event_type"] for e in audit] == ["LocalAccount.LockedOut"]
    assert client.get("/api/v1/users/olivia", auth=AUTH).json()["locked_until"]
    unlocked = client.post("/api/v1/users/olivia/unlock", auth=AUTH, json={"reason": "help desk ticket 42"})
    assert unlocked.status_code == 200
    assert client.get("/api/v1/me", auth=OLIVIA).status_code == 200

    changed = client.put(
        "/api/v1/me/password", auth=OLIVIA,
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )  # fmt: skip
    assert changed.status_code == 200
    assert client.get("/api/v1/me", auth=("olivia", "a brand new passphrase")).status_code == 200


def test_a_local_user_signs_in_to_the_console_and_disabling_ends_the_session(runtime: Runtime) -> None:
    runtime.app.create_user("olivia", PASSWORD, [], None, actor="admin")
    settings = settings_for(runtime.settings.database_url, credential_cache_seconds=0)
    app = create_app(settings, runtime=runtime, start_workers=False)
    with TestClient(app) as browser:
        sign_in_form(browser, "olivia", PASSWORD)
        assert browser.get("/ui/", follow_redirects=False).status_code == 200
        runtime.app.change_user("olivia", "admin", disabled=True, reason="left")
        after = browser.get("/ui/", follow_redirects=False)
        assert after.status_code in (302, 303)
        assert "/ui/login" in after.headers["location"]


def test_the_console_users_page_creates_and_unlocks(runtime: Runtime) -> None:
    runtime.ensure_admin()
    settings = settings_for(runtime.settings.database_url)
    with TestClient(create_app(settings, runtime=runtime, start_workers=False)) as browser:
        sign_in_form(browser, "admin", "secret-pw")
        page = browser.get("/ui/users")
        assert page.status_code == 200
        assert 'href="/ui/users" aria-current="page"' in page.text
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = {"csrf": csrf, "username": "olivia", "password": PASSWORD, "groups": "payroll-team, ops"}
        assert browser.post("/ui/users", data=form, follow_redirects=False).status_code == 303
        runtime.catch_up()
        listed = browser.get("/ui/users").text
        assert 'data-user="olivia"' in listed
        assert "cn=payroll-team,ou=local-groups,o=stagekeeper" in listed
        weak = browser.post("/ui/users", data={**form, "username": "petra", "password": "short"})
        assert weak.status_code == 422
        assert "at least 12" in weak.text
    # Somebody who is not an administrator sees neither the page nor the link.
    with TestClient(create_app(settings, runtime=runtime, start_workers=False)) as other:
        sign_in_form(other, "olivia", PASSWORD)
        assert "/ui/users" not in other.get("/ui/").text
        assert other.get("/ui/users").status_code == 403
