"""The reason of the newest commands (power, retire) obeys the same text rule as every other."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.e2e.conftest import AUTH
from tests.e2e.test_api import setup_configuration, setup_service, wait_state

BAD_REASONS = ["p\x00y", "why\u202e", "r" * 2049, "a\udfff"]


def post(client: TestClient, path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    # Sent as ASCII JSON, so a lone surrogate travels as the escape a client would send.
    response = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"}, auth=AUTH)
    return response.status_code, dict(response.json())


def test_power_and_retire_refuse_a_reason_the_text_rule_refuses(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    path = f"/api/v1/configurations/{configuration['id']}/deployments"
    deployment_id = client.post(path, json={"stage": "int"}, auth=AUTH).json()["id"]
    machine = wait_state(client, deployment_id, "deployed")["machines"][0]["name"]
    for reason in BAD_REASONS:
        power = f"/api/v1/deployments/{deployment_id}/machines/{machine}/power"
        status, body = post(client, power, {"action": "reset", "reason": reason})
        assert (status, body["error"]["field"]) == (422, "reason"), (reason[:10], body)  # type: ignore[index]
        status, body = post(client, f"/api/v1/configurations/{configuration['id']}/retire", {"reason": reason})
        assert (status, body["error"]["field"]) == (422, "reason"), (reason[:10], body)  # type: ignore[index]
    events = client.get(f"/api/v1/audit?deployment={deployment_id}&type=Deployment.PowerRequested", auth=AUTH)
    assert events.json()["items"] == []
