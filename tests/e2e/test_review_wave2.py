"""Review of wave 2 (CLI, metrics and logs, local users, SIEM, export/import, governance, usage,
placement): each test reproduces one finding of docs/review-wave2.md and fails until it is fixed."""

from __future__ import annotations

import copy
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.logs import TextFormatter
from adapters.runtime import Runtime
from api.app import create_app
from domain.portability import bundle, chain
from tests.e2e.conftest import AUTH
from tests.e2e.test_console_pages import sign_in_form
from tests.e2e.test_rebalance import crowd
from tests.support import runtime_for, settings_for, stages

PASSWORD = "correct horse battery"


def _series(client: TestClient, name: str) -> list[str]:
    text = client.get("/metrics", auth=AUTH).text
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def test_invented_http_methods_do_not_create_metric_series(client: TestClient) -> None:
    before = len(_series(client, "stagekeeper_http_requests_total"))
    for n in range(20):
        client.request(f"X{n}", "/api/v1/services", auth=AUTH)
    after = _series(client, "stagekeeper_http_requests_total")
    assert not [line for line in after if 'method="X' in line]
    assert len(after) <= before + 2


def test_a_path_cannot_forge_a_text_log_line(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="stagekeeper.access"):
        client.get("/api/v1/x%0a2026-11-26 00:00:00 INFO stagekeeper.access: POST /api/v1/imports 201", auth=AUTH)
    records = [r for r in caplog.records if r.name == "stagekeeper.access"]
    assert records
    formatter = TextFormatter()
    for record in records:
        assert "\n" not in formatter.format(record)


def test_exporting_a_service_with_a_non_latin1_name_is_not_a_500(client: TestClient) -> None:
    made = client.post("/api/v1/services", auth=AUTH, json={"name": "給与", "stages": stages("int")})
    assert made.status_code == 201, made.text
    try:
        exported = client.get(f"/api/v1/services/{made.json()['id']}/export", auth=AUTH)
    except Exception as error:  # raise_server_exceptions: the 500 surfaces as the exception
        pytest.fail(f"export crashed: {error!r}")
    assert exported.status_code == 200


def _export_and_forget(client: TestClient, name: str) -> dict[str, Any]:
    made = client.post("/api/v1/services", auth=AUTH, json={"name": name, "stages": stages("int")})
    assert made.status_code == 201, made.text
    document: dict[str, Any] = client.get(f"/api/v1/services/{made.json()['id']}/export", auth=AUTH).json()
    return document


def _reforge(document: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Anyone can recompute the 'signature': it is a hash chain with no key."""
    plain = [{k: v for k, v in r.items() if k != "hash"} for r in records]
    assert chain(plain)  # the public algorithm
    return bundle(plain, document["service"], document["exported_by"], document["exported_at"])


@pytest.fixture
def other(tmp_path: Path) -> Iterator[TestClient]:
    """A second instance, to import into."""
    runtime = runtime_for(f"sqlite:///{tmp_path}/other.db")
    runtime.ensure_admin()
    app = create_app(settings_for(runtime.settings.database_url), runtime=runtime)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client
    runtime.close()


def test_import_refuses_a_recomputed_file_with_control_and_bidi_characters(
    client: TestClient, other: TestClient
) -> None:
    document = _export_and_forget(client, "payroll")
    assert other.post("/api/v1/imports", auth=AUTH, json=document).status_code == 201  # the honest file loads
    records = copy.deepcopy(document["records"])
    new_id = "0b6b4b3e-2f7e-4c55-9d0c-8f0d6b1a2c3d"
    renamed = 0
    for record in records:
        record["originator_id"] = new_id
        if "name" in record["state"] and record["topic"].endswith("Service.Registered"):
            record["state"]["name"] = "pay\u202eroll\u0007"
            renamed += 1
    assert renamed == 1
    for record in records:  # its pools and ranges would collide with the honest import
        for stage in record["state"].get("stages", []) or []:
            if isinstance(stage, dict) and "resource_pool" in stage:
                stage["resource_pool"] = stage["resource_pool"] + "-forged"
    forged = _reforge(document, records)
    imported = other.post("/api/v1/imports", auth=AUTH, json=forged)
    assert imported.status_code == 422, imported.text
    assert imported.json()["error"]["field"].startswith("records")


def test_stop_the_line_refuses_a_rebalance(client: TestClient, runtime: Runtime) -> None:
    deployment_id = crowd(runtime)
    url = f"/api/v1/deployments/{deployment_id}/rebalance"
    assert len(client.post(url, json={"dry_run": True}, auth=AUTH).json()["moves"]) == 1
    stopped = client.post("/api/v1/stop-the-line", json={"reason": "incident 42"}, auth=AUTH)
    assert stopped.status_code == 200, stopped.text
    refused = client.post(url, json={"dry_run": False, "reason": "spread web"}, auth=AUTH)
    assert refused.status_code == 409, refused.text
    assert "incident 42" in refused.json()["error"]["message"]


def test_guessing_the_current_password_counts_towards_lockout(client: TestClient, runtime: Runtime) -> None:
    made = client.post("/api/v1/users", auth=AUTH, json={"username": "olivia", "password": PASSWORD})
    assert made.status_code == 201, made.text
    token = client.post("/api/v1/tokens", auth=("olivia", PASSWORD), json={"name": "laptop"})
    assert token.status_code == 201, token.text
    bearer = {"Authorization": f"Bearer {token.json()['token']}"}
    answers = []
    for n in range(20):
        guess = client.put(
            "/api/v1/me/password", headers=bearer,
            json={"current_password": f"guess number {n}", "new_password": "a brand new passphrase"},
        )  # fmt: skip
        answers.append(guess.status_code)
    # Wrong guesses count as failed sign-ins: after the policy's number the account is locked, and
    # from then on no guess is checked at all (409 whatever the password, so nothing is learnt).
    failures = runtime.app.lockout_policy.failures
    assert answers == [422] * failures + [409] * (20 - failures)
    assert client.get("/api/v1/users/olivia", auth=AUTH).json()["locked_until"]
    # Twenty wrong passwords: the account is locked (audited) and the right one no longer changes it.
    right = client.put(
        "/api/v1/me/password", headers=bearer,
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )  # fmt: skip
    assert right.status_code in (401, 409, 429), right.text


OLIVIA = ("olivia", PASSWORD)
CAB = "cn=cab,ou=local-groups,o=stagekeeper"


def _owned_by_olivia(client: TestClient, runtime: Runtime) -> str:
    assert client.post("/api/v1/users", auth=AUTH, json={"username": "olivia", "password": PASSWORD}).status_code == 201
    made = client.post("/api/v1/services", auth=AUTH, json={"name": "payroll", "stages": stages("int", "prod")})
    assert made.status_code == 201, made.text
    service_id: str = made.json()["id"]
    granted = client.post(
        f"/api/v1/services/{service_id}/grants",
        auth=AUTH,
        json={"role": "service-owner", "user": "olivia", "reason": "team"},
    )
    assert granted.status_code == 201, granted.text
    runtime.catch_up()
    return service_id


def test_an_owner_cannot_lift_the_approval_policy_an_administrator_set(client: TestClient, runtime: Runtime) -> None:
    service_id = _owned_by_olivia(client, runtime)
    policy = {"approvals": {"required": 2, "group": CAB, "requester_may_approve": False}, "reason": "CAB decision"}
    assert client.patch(f"/api/v1/services/{service_id}/stages/prod", auth=AUTH, json=policy).status_code == 200
    lifted = client.patch(
        f"/api/v1/services/{service_id}/stages/prod", auth=OLIVIA, json={"approvals": None, "reason": "in a hurry"}
    )
    assert lifted.status_code == 403, lifted.text


def test_an_owner_cannot_delete_a_freeze_window_an_administrator_set(client: TestClient, runtime: Runtime) -> None:
    service_id = _owned_by_olivia(client, runtime)
    now = runtime.clock.now()
    window = {
        "name": "year end", "service_id": service_id, "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(days=5)).isoformat(), "reason": "change freeze",
    }  # fmt: skip
    created = client.post("/api/v1/freeze-windows", json=window, auth=AUTH)
    assert created.status_code == 201, created.text
    removed = client.request(
        "DELETE", f"/api/v1/freeze-windows/{created.json()['id']}", auth=OLIVIA, json={"reason": "in a hurry"}
    )
    assert removed.status_code == 403, removed.text


def test_disabling_a_local_user_ends_their_console_session_at_once(runtime: Runtime) -> None:
    runtime.app.create_user("olivia", PASSWORD, [], None, actor="admin")
    settings = settings_for(runtime.settings.database_url, credential_cache_seconds=60)
    app = create_app(settings, runtime=runtime, start_workers=False)
    api = TestClient(app)  # no lifespan of its own: the browser's runs the app
    with TestClient(app) as browser:
        sign_in_form(browser, "olivia", PASSWORD)
        assert browser.get("/ui/", follow_redirects=False).status_code == 200
        disabled = api.patch("/api/v1/users/olivia", auth=AUTH, json={"disabled": True, "reason": "left the company"})
        assert disabled.status_code == 200, disabled.text
        assert api.get("/api/v1/me", auth=OLIVIA).status_code == 401  # the API refuses at once
        after = browser.get("/ui/", follow_redirects=False)
        assert after.status_code in (302, 303), "the console still serves the disabled user"


def test_an_administrator_s_password_reset_ends_the_user_s_console_sessions(runtime: Runtime) -> None:
    runtime.app.create_user("olivia", PASSWORD, [], None, actor="admin")
    settings = settings_for(runtime.settings.database_url, credential_cache_seconds=0)
    app = create_app(settings, runtime=runtime, start_workers=False)
    api = TestClient(app)  # no lifespan of its own: the attacker's runs the app
    with TestClient(app) as attacker:
        sign_in_form(attacker, "olivia", PASSWORD)  # somebody who learnt the password
        assert attacker.get("/ui/", follow_redirects=False).status_code == 200
        reset = api.patch(
            "/api/v1/users/olivia", auth=AUTH, json={"password": "a brand new passphrase", "reason": "compromised"}
        )
        assert reset.status_code == 200, reset.text
        after = attacker.get("/ui/", follow_redirects=False)
        assert after.status_code in (302, 303), "the old password's session still works"


def test_the_cli_export_stays_in_the_current_directory_whatever_the_server_answers(tmp_path: Path) -> None:
    service_id = "0b6b4b3e-2f7e-4c55-9d0c-8f0d6b1a2c3d"
    document = {"service": {"id": service_id, "name": "../escaped"}, "chain": {"count": 0, "head": "0" * 64}}

    class Server(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)  # a server that is not Stagekeeper
    threading.Thread(target=server.serve_forever, daemon=True).start()
    work = tmp_path / "work"
    work.mkdir()
    try:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("STAGEKEEPER_")}
        environ.update(
            STAGEKEEPER_CONFIG_DIR=str(tmp_path / "home"), STAGEKEEPER_TOKEN="t",
            STAGEKEEPER_URL=f"http://127.0.0.1:{server.server_address[1]}",
        )  # fmt: skip
        ran = subprocess.run(
            [sys.executable, "-m", "api.cli", "export", "service", service_id],
            cwd=work, env={**environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert not (tmp_path / "escaped.stagekeeper.json").exists(), "written outside the current directory"
    assert ran.returncode == 0, ran.stderr
    assert [p.name for p in work.iterdir()] == ["_escaped.stagekeeper.json"]  # in the current directory
