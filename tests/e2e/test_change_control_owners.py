"""Who may change the change controls over HTTP and what the console shows (review finding 7):
owners tighten, administrators also loosen; a window an administrator created is theirs alone."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from tests.e2e.conftest import AUTH
from tests.e2e.test_console_pages import sign_in_form
from tests.e2e.test_review_wave2 import CAB, OLIVIA, PASSWORD, _owned_by_olivia


def test_an_owner_tightens_but_only_an_administrator_loosens(client: TestClient, runtime: Runtime) -> None:
    service_id = _owned_by_olivia(client, runtime)
    url = f"/api/v1/services/{service_id}/stages/prod"
    assert client.patch(url, auth=OLIVIA, json={"quota": {"vcpus": 40}, "soak_seconds": 600}).status_code == 200
    assert client.patch(url, auth=OLIVIA, json={"quota": {"vcpus": 32}}).status_code == 200
    raised = client.patch(url, auth=OLIVIA, json={"quota": {"vcpus": 64}, "reason": "more"})
    assert raised.status_code == 403, raised.text
    assert raised.json()["error"]["field"] == "quota.vcpus"
    shorter = client.patch(url, auth=OLIVIA, json={"soak_seconds": 60})
    assert (shorter.status_code, shorter.json()["error"]["field"]) == (403, "soak_seconds")
    policy = {"approvals": {"required": 1, "group": CAB}}
    assert client.patch(url, auth=OLIVIA, json=policy).status_code == 200
    own_group = {"approvals": {"required": 1, "group": CAB, "requester_may_approve": True}}
    assert client.patch(url, auth=OLIVIA, json=own_group).status_code == 403
    assert client.patch(url, auth=OLIVIA, json={"name": "production"}).status_code == 200  # other fields: owners
    loosened = client.patch(f"/api/v1/services/{service_id}/stages/production", auth=AUTH, json={"quota": None})
    assert loosened.status_code == 200, loosened.text
    assert loosened.json()["stages"][1].get("quota") is None


def test_owners_change_their_own_windows_and_see_the_administrator_s(client: TestClient, runtime: Runtime) -> None:
    service_id = _owned_by_olivia(client, runtime)
    now = runtime.clock.now()
    window = {
        "name": "release week", "service_id": service_id, "start": (now + timedelta(days=1)).isoformat(),
        "end": (now + timedelta(days=2)).isoformat(), "reason": "freeze",
    }  # fmt: skip
    mine = client.post("/api/v1/freeze-windows", json=window, auth=OLIVIA)
    assert mine.status_code == 201, mine.text
    assert mine.json()["by_administrator"] is False
    theirs = client.post("/api/v1/freeze-windows", json={**window, "name": "year end"}, auth=AUTH)
    assert theirs.json()["by_administrator"] is True
    changed = client.put(f"/api/v1/freeze-windows/{theirs.json()['id']}", json={**window, "name": "x"}, auth=OLIVIA)
    assert changed.status_code == 403, changed.text
    assert "administrator created it" in changed.json()["error"]["message"]
    kept = client.put(f"/api/v1/freeze-windows/{theirs.json()['id']}", json={**window, "name": "year end!"}, auth=AUTH)
    assert kept.json()["by_administrator"] is True
    removed = client.request("DELETE", f"/api/v1/freeze-windows/{mine.json()['id']}", auth=OLIVIA, json={"reason": "x"})
    assert removed.status_code == 200, removed.text
    page = sign_in_form(client, "olivia", PASSWORD).get(f"/ui/services/{service_id}")
    assert "set by an administrator" in page.text
