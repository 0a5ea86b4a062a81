"""Audit, history, point-in-time and board over HTTP."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.conftest import AUTH
from tests.e2e.test_api import setup_configuration, setup_service, wait_state
from tests.support import machine, stages


def now() -> str:
    time.sleep(0.005)
    stamp = datetime.now(UTC).isoformat()
    time.sleep(0.005)
    return stamp


def test_history_diff_as_of_and_restore_round_trip(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    path = f"/api/v1/configurations/{configuration['id']}"
    at_v1 = now()
    client.put(f"{path}/machines/web1", json=machine("web1", cpus=8), auth=AUTH)
    client.delete(f"{path}/machines/web2", params={"reason": "cost"}, auth=AUTH)
    at_v3 = now()
    changed = client.patch(path, json={"name": "p3-renamed"}, auth=AUTH).json()
    history = client.get(f"{path}/history", params={"min_position": changed["position"]}, auth=AUTH).json()
    assert [h["version"] for h in history["items"]] == [1, 2, 3, 4]
    assert history["items"][1]["summary"] == "machine web1: cpus 2 -> 8"
    assert history["items"][2]["reason"] == "cost"
    diff = client.get(f"{path}/diff", params={"from": 1, "to": 3}, auth=AUTH).json()
    assert diff["changes"]["machines"]["changed"] == {"web1": {"cpus": [2, 8]}}
    assert [m["name"] for m in diff["changes"]["machines"]["removed"]] == ["web2"]
    as_of = client.get(path, params={"as_of": at_v1}, auth=AUTH)
    assert as_of.json()["version"] == 1
    assert client.get(path, params={"as_of": at_v3}, auth=AUTH).json()["version"] == 3
    assert client.get(path, params={"as_of": "2001-01-01T00:00:00Z"}, auth=AUTH).status_code == 404
    assert client.get(path, params={"as_of": "last tuesday"}, auth=AUTH).json()["error"]["field"] == "as_of"
    restored = client.post(f"{path}/restore", json={"as_of": at_v1, "reason": "roll back"}, auth=AUTH).json()
    assert restored["version"] == 5
    assert restored["machines"] == as_of.json()["machines"]
    assert restored["name"] == "p3"
    undone = client.post(f"{path}/restore", json={"version": 4}, auth=AUTH).json()
    assert undone["name"] == "p3-renamed"
    assert [m["name"] for m in undone["machines"]] == ["web1", "app1", "db1"]
    bad = client.post(f"{path}/restore", json={}, auth=AUTH)
    assert bad.status_code == 422


def test_audit_filters_paginates_and_exports(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    deployment = client.post(
        f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "int", "reason": "r7"}, auth=AUTH
    ).json()
    wait_state(client, deployment["id"], "deployed")
    client.post(f"/api/v1/deployments/{deployment['id']}/promote", json={"reason": "qa ok"}, auth=AUTH)
    moved = wait_state(client, deployment["id"], "deployed")
    query = {"service": service["id"], "min_position": moved["position"]}
    entries = client.get("/api/v1/audit", params={**query, "limit": 1000}, auth=AUTH).json()["items"]
    positions = [e["position"] for e in entries]
    assert positions == sorted(positions, reverse=True)
    moves = [e for e in entries if e["event_type"] == "Deployment.MoveRequested"]
    assert [(m["actor"], m["reason"], m["summary"]) for m in moves] == [
        ("admin", "qa ok", "promote requested: 'int' -> 'test'")
    ]
    into_test = client.get("/api/v1/audit", params={**query, "stage": "test", "type": "Deployment."}, auth=AUTH)
    assert {e["event_type"] for e in into_test.json()["items"]} >= {"Deployment.MoveRequested", "Deployment.Moved"}
    by_actor = client.get("/api/v1/audit", params={**query, "actor": "stagekeeper"}, auth=AUTH).json()["items"]
    assert by_actor
    assert all(e["actor"] == "stagekeeper" for e in by_actor)
    page, seen, cursor = 1, [], None
    while True:
        params: dict[str, Any] = {**query, "limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/audit", params=params, auth=AUTH).json()
        seen += [e["position"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        page += 1
    assert seen == positions
    assert page > 2
    future = client.get("/api/v1/audit", params={"from": "2100-01-01T00:00:00Z"}, auth=AUTH).json()
    assert future["items"] == []
    assert client.get("/api/v1/audit", params={"from": "2100-01-01", "to": "2000-01-01"}, auth=AUTH).status_code == 422
    lines = client.get("/api/v1/audit/export", params={"service": service["id"]}, auth=AUTH).text.splitlines()
    exported = [json.loads(line) for line in lines]
    assert [e["position"] for e in exported] == sorted(positions)
    text = client.get("/api/v1/audit/export", params={"format": "csv", "service": service["id"]}, auth=AUTH).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["position"]) for r in rows] == sorted(positions)
    assert client.get("/api/v1/audit/export", params={"format": "xml"}, auth=AUTH).status_code == 422


def test_refused_commands_are_in_the_audit_log_with_the_actor(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    deployment = client.post(
        f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "prod"}, auth=AUTH
    ).json()
    wait_state(client, deployment["id"], "deployed")
    refused = client.post(f"/api/v1/deployments/{deployment['id']}/promote", json={"reason": "try"}, auth=AUTH)
    assert refused.status_code == 409
    entries = client.get(
        "/api/v1/audit",
        params={
            "type": "Refusal.Recorded",
            "service": service["id"],
            "min_position": refused.json()["error"]["position"],
        },
        auth=AUTH,
    )
    [entry] = [e for e in entries.json()["items"] if "promote" in e["summary"]]
    assert entry["actor"] == "admin"
    assert "last stage" in entry["summary"]


def test_board_now_and_as_of_and_inventory(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    deployment = client.post(
        f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "int"}, auth=AUTH
    ).json()
    wait_state(client, deployment["id"], "deployed")
    while_in_int = now()
    client.post(f"/api/v1/deployments/{deployment['id']}/promote", auth=AUTH)
    promoted = wait_state(client, deployment["id"], "deployed")
    board = client.get("/api/v1/board", params={"min_position": promoted["position"]}, auth=AUTH).json()
    [payroll] = board["services"]
    held = {s["name"]: [d["id"] for d in s["deployments"]] for s in payroll["stages"]}
    assert held == {"int": [], "test": [deployment["id"]], "prod": []}
    past = client.get("/api/v1/board", params={"as_of": while_in_int}, auth=AUTH).json()
    [payroll_then] = past["services"]
    then = {s["name"]: [(d["id"], d["state"]) for d in s["deployments"]] for s in payroll_then["stages"]}
    assert then == {"int": [(deployment["id"], "deployed")], "test": [], "prod": []}
    # One shape, whatever the time.
    [entry_now] = payroll["stages"][1]["deployments"]
    [entry_then] = payroll_then["stages"][0]["deployments"]
    assert sorted(entry_then) == sorted(entry_now)
    assert (entry_then["stage"], entry_now["stage"]) == ("int", "test")
    assert entry_then["version"] < entry_now["version"]
    assert [sorted(s) for s in payroll_then["stages"]] == [sorted(s) for s in payroll["stages"]]
    before_everything = client.get("/api/v1/board", params={"as_of": "2000-01-01T00:00:00Z"}, auth=AUTH).json()
    assert before_everything["services"] == []
    inventory = client.get(
        "/api/v1/inventory",
        params={"service": service["id"], "stage": "test", "min_position": promoted["position"]},
        auth=AUTH,
    ).json()["items"]
    assert sorted(m["name"] for m in inventory) == ["app1", "db1", "web1", "web2"]
    assert all(m["vm_name"] and m["ip"] for m in inventory)
    assert (
        client.get("/api/v1/inventory", params={"service": service["id"], "stage": "nope"}, auth=AUTH).status_code
        == 404
    )


def test_the_board_filtered_by_service_shows_only_that_service_now_and_as_of(client: TestClient) -> None:
    payroll = setup_service(client)
    other = client.post(
        "/api/v1/services", json={"name": "hr", "description": "", "stages": stages("int", pools="hr-")}, auth=AUTH
    ).json()
    configuration = setup_configuration(client, payroll["id"])
    deployment = client.post(
        f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "int"}, auth=AUTH
    ).json()
    deployed = wait_state(client, deployment["id"], "deployed")
    moment = now()
    everything = client.get("/api/v1/board", params={"min_position": deployed["position"]}, auth=AUTH).json()
    assert sorted(s["name"] for s in everything["services"]) == ["hr", "payroll"]
    for params in ({}, {"as_of": moment}):
        only_hr = client.get("/api/v1/board", params={"service": other["id"], **params}, auth=AUTH).json()
        assert [s["name"] for s in only_hr["services"]] == ["hr"], params
        only_payroll = client.get("/api/v1/board", params={"service": payroll["id"], **params}, auth=AUTH).json()
        [shown] = only_payroll["services"]
        assert [d["id"] for d in shown["stages"][0]["deployments"]] == [deployment["id"]], params
    unknown = client.get("/api/v1/board", params={"service": "00000000-0000-0000-0000-000000000000"}, auth=AUTH)
    assert unknown.status_code == 404


def test_the_audit_of_a_renamed_stage_is_one_history_by_name_or_id(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    deployment = client.post(
        f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "int"}, auth=AUTH
    ).json()
    wait_state(client, deployment["id"], "deployed")
    renamed = client.patch(
        f"/api/v1/services/{service['id']}/stages/int", json={"name": "integration"}, auth=AUTH
    ).json()
    [stage_id] = [s["id"] for s in renamed["stages"] if s["name"] == "integration"]
    client.post(f"/api/v1/deployments/{deployment['id']}/undeploy", auth=AUTH)
    gone = wait_state(client, deployment["id"], "undeployed")

    def types(**params: str) -> list[str]:
        query = {"service": service["id"], "min_position": str(gone["position"]), **params}
        items = client.get("/api/v1/audit", params=query, auth=AUTH).json()["items"]
        assert all(i["stage_id"] == stage_id for i in items if i["stage"] in ("int", "integration"))
        return [str(i["event_type"]) for i in reversed(items)]

    by_name = types(stage="integration")
    assert "Deployment.Requested" in by_name  # recorded while the stage was called "int"
    assert "Service.StageRenamed" in by_name
    assert "Deployment.Undeployed" in by_name  # recorded after the rename
    assert types(stage=stage_id) == by_name
    assert types(stage="INTEGRATION") == by_name
    # A name no stage has now matches the name as it was then: "int" before the rename only.
    before = types(stage="int")
    assert "Deployment.Requested" in before
    assert "Deployment.Undeployed" not in before


def test_bookkeeping_entries_are_shown_only_when_asked_for(client: TestClient) -> None:
    service = setup_service(client)

    def types(**params: str) -> list[str]:
        query = {"min_position": str(service["position"]), **params}
        return [str(i["event_type"]) for i in client.get("/api/v1/audit", params=query, auth=AUTH).json()["items"]]

    assert "Service.Registered" in types()
    assert not [t for t in types() if t.startswith("NameClaim.")]
    assert "NameClaim.Claimed" in types(include="system")
    assert set(types(type="NameClaim.")) == {"NameClaim.Claimed"}
    refused = client.get("/api/v1/audit", params={"include": "everything"}, auth=AUTH)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "include"
