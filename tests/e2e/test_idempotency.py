"""Idempotency-Key on POST: one effect, the same answer, and a refusal of a reused key."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from tests.e2e.conftest import AUTH
from tests.e2e.live import serve
from tests.support import settings_for, stages

PAYROLL = {"name": "payroll", "stages": stages("int")}


def names(client: TestClient | httpx.Client, position: int) -> list[str]:
    listed = client.get("/api/v1/services", params={"min_position": position}, auth=AUTH).json()
    return [s["name"] for s in listed["items"]]


def test_the_same_key_twice_gives_one_service_and_the_same_answer(client: TestClient, runtime: Runtime) -> None:
    key = {"Idempotency-Key": "c0ffee-1"}
    first = client.post("/api/v1/services", json=PAYROLL, headers=key, auth=AUTH)
    again = client.post("/api/v1/services", json=PAYROLL, headers=key, auth=AUTH)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert names(client, runtime.app.head()) == ["payroll"]
    # Without a key, the same body is a new request: the name is taken now.
    assert client.post("/api/v1/services", json=PAYROLL, auth=AUTH).status_code == 409


def test_a_refusal_is_replayed_too_and_not_recorded_twice(client: TestClient, runtime: Runtime) -> None:
    assert client.post("/api/v1/services", json=PAYROLL, auth=AUTH).status_code == 201
    key = {"Idempotency-Key": "dup-name"}
    first = client.post("/api/v1/services", json=PAYROLL, headers=key, auth=AUTH)
    again = client.post("/api/v1/services", json=PAYROLL, headers=key, auth=AUTH)
    assert first.status_code == again.status_code == 409
    assert again.json() == first.json()
    audit = client.get("/api/v1/audit", params={"min_position": runtime.app.head()}, auth=AUTH).json()["items"]
    assert len([e for e in audit if e["event_type"].startswith("Refusal")]) == 1


def test_the_same_key_with_another_body_is_refused_naming_the_header(client: TestClient, runtime: Runtime) -> None:
    key = {"Idempotency-Key": "k-2"}
    assert client.post("/api/v1/services", json=PAYROLL, headers=key, auth=AUTH).status_code == 201
    other = client.post("/api/v1/services", json={**PAYROLL, "name": "billing"}, headers=key, auth=AUTH)
    assert other.status_code == 422
    assert other.json()["error"]["field"] == "Idempotency-Key"
    assert names(client, runtime.app.head()) == ["payroll"]


def test_keys_are_bounded_in_length_and_charset(client: TestClient) -> None:
    for bad in (b"", b"x" * 129, b"a b", "ключ".encode()):
        response = client.post("/api/v1/services", json=PAYROLL, headers={"Idempotency-Key": bad}, auth=AUTH)
        assert response.status_code == 422, bad
        assert response.json()["error"]["field"] == "Idempotency-Key"


def test_concurrent_requests_with_the_same_key_take_effect_once(runtime: Runtime) -> None:
    app = create_app(settings_for(runtime.settings.database_url), runtime=runtime, start_workers=False)
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()
    with serve(app) as url:
        start = threading.Barrier(8)

        def post() -> None:
            with httpx.Client(base_url=url, auth=AUTH, timeout=30) as client:
                start.wait()
                response = client.post("/api/v1/services", json=PAYROLL, headers={"Idempotency-Key": "race-1"})
                with lock:
                    answers.append((response.status_code, response.json()))

        threads = [threading.Thread(target=post) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        runtime.projection_follower.catch_up()
        with httpx.Client(base_url=url, auth=AUTH, timeout=30) as client:
            listed = names(client, runtime.app.head())
    assert listed == ["payroll"]
    assert {status for status, _ in answers} == {201}
    assert len({body["id"] for _, body in answers}) == 1


def test_a_token_secret_is_never_kept_for_a_repeat(client: TestClient, runtime: Runtime) -> None:
    key = {"Idempotency-Key": "token-1"}
    body = {"name": "ci", "expires_in_days": 30}
    first = client.post("/api/v1/tokens", json=body, headers=key, auth=AUTH)
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/tokens", json=body, headers=key, auth=AUTH)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "answer_not_kept"
    secret = first.json()["token"]
    stored = runtime.app.select_notifications(1, 10_000)
    assert not [n for n in stored if secret.encode() in n.state]
