"""Bad input never gets a 500 and never changes anything: every route, many kinds of junk."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.conftest import AUTH
from tests.e2e.test_api import setup_configuration, setup_service, wait_state

JUNK_BODIES: list[Any] = [
    [],
    "text",
    17,
    None,
    {"name": None},
    {"name": "x" * 5000},
    {"name": 10**30, "stages": "all"},
    {"stages": [None, 1, "x"], "machines": [{"name": {}}], "networks": [[]]},
    {"machines": [{"name": "a", "template": "tpl-ubuntu-2404", "cpus": 10**30}]},
    {"machines": [{"name": "a", "template": "tpl-ubuntu-2404", "nics": [{"network": None}]}]},
    {"stage": ["int"], "reason": {"why": 1}},
    {"order": [None]},
    {"version": "1", "as_of": 5},
    {"names": "tpl", "all": "yes"},
    {"name": "\u0000\ud7ff\U0001f600", "resource_pool": "/\u0000/host/x/Resources"},
    {"expires_in_days": -1, "name": ""},
]
JUNK_QUERY = {"limit": "-5", "min_position": "minus", "as_of": "not a time", "version": "0", "from": "x", "cursor": "0"}


def test_no_route_answers_500_or_changes_state_on_junk(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    deployment = client.post(
        f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "int"}, auth=AUTH
    ).json()
    wait_state(client, deployment["id"], "deployed")
    ids = {
        "{service_id}": service["id"],
        "{configuration_id}": configuration["id"],
        "{deployment_id}": deployment["id"],
        "{token_id}": "00000000-0000-0000-0000-000000000000",
        "{stage}": "int",
        "{name}": "web1",
    }
    app = client.app.state.runtime.app  # type: ignore[attr-defined]
    spec = client.get("/openapi.json").json()
    checked = 0
    for template, methods in spec["paths"].items():
        path = template
        for placeholder, value in ids.items():
            path = path.replace(placeholder, value)
        for method in methods:
            for body in JUNK_BODIES if method in ("post", "put", "patch") else [None]:
                head = app.head()
                response = client.request(method.upper(), path, json=body, params=JUNK_QUERY, auth=AUTH)
                checked += 1
                assert response.status_code < 500, (method, path, body, response.text)
                if response.status_code >= 400:
                    assert response.json()["error"]["message"], (method, path, body)
                    # A refusal is recorded for the audit; nothing else may have changed on the
                    # caller's behalf (the process manager may still be finishing earlier work).
                    written = {
                        n.topic
                        for n in app.select_notifications(head + 1, 1000)
                        if getattr(app.decode(n), "actor", None) == "admin"
                    }
                    assert written <= {"stagekeeper:Refusal.Recorded"}, (method, path, body, written)
    assert checked > 200
