"""Outage answers: a commit whose outcome is unknown, and Retry-After on every 503."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eventsourcing.persistence import OperationalError, StoredEvent
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from domain.outage import GuardedRecorder
from tests.e2e.conftest import AUTH
from tests.support import runtime_for, stages


def lose_connection(runtime: Runtime, after_commit: bool) -> list[list[str]]:
    """The next insert's connection breaks, after COMMIT (it landed) or before (it did not)."""
    recorder: Any = runtime.app.recorder
    target = recorder.wrapped if isinstance(recorder, GuardedRecorder) else recorder
    real = target.insert_events
    calls: list[list[str]] = []

    def insert_events(stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        calls.append([e.topic for e in stored_events])
        if len(calls) == 1:
            if after_commit:
                real(stored_events, **kwargs)
            raise OperationalError("server closed the connection unexpectedly")
        return real(stored_events, **kwargs)

    target.insert_events = insert_events
    return calls


def services(client: TestClient, position: int) -> list[str]:
    listed = client.get("/api/v1/services", params={"min_position": position}, auth=AUTH).json()
    return [s["name"] for s in listed["items"]]


def test_a_create_whose_commit_landed_before_the_connection_broke_answers_success(
    client: TestClient, runtime: Runtime
) -> None:
    calls = lose_connection(runtime, after_commit=True)
    response = client.post("/api/v1/services", json={"name": "payroll", "stages": stages("int")}, auth=AUTH)
    assert response.status_code == 201, response.text
    registrations = [c for c in calls if "stagekeeper:Service.Registered" in c]
    assert len(registrations) == 1, "the write was not sent twice"
    position = response.json()["position"]
    assert services(client, position) == ["payroll"]
    audit = client.get("/api/v1/audit", params={"min_position": position}, auth=AUTH).json()["items"]
    assert not [e for e in audit if e["event_type"].startswith("Refusal")]


def test_a_create_whose_commit_did_not_land_answers_503_and_changes_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    lose_connection(runtime, after_commit=False)
    response = client.post("/api/v1/services", json={"name": "payroll", "stages": stages("int")}, auth=AUTH)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["Retry-After"] == "5"
    assert services(client, runtime.app.head()) == []
    again = client.post("/api/v1/services", json={"name": "payroll", "stages": stages("int")}, auth=AUTH)
    assert again.status_code == 201


def test_a_read_model_that_has_not_caught_up_answers_503_with_retry_after(tmp_path: Path) -> None:
    runtime = runtime_for(f"sqlite:///{tmp_path}/sk.db", read_wait_seconds=0.1)
    try:
        runtime.ensure_admin()
        app = create_app(runtime.settings, runtime=runtime, start_workers=False)
        with TestClient(app) as client:
            response = client.get("/api/v1/services", params={"min_position": 10**9}, auth=AUTH)
    finally:
        runtime.close()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert int(response.headers["Retry-After"]) >= 1
