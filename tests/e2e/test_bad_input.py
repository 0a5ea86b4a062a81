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
    # Hidden characters, newline-suffixed names, hostile paths, huge pools, loose types.
    {"name": "dupname\n", "description": "a\u0000b", "reason": "why\u202e"},
    {"name": "pay\u200broll", "stages": [{"name": "int\n", "resource_pool": "/DC0/host/DC0_C0/Resources/../../etc"}]},
    {"resource_pool": "/DC0/host/DC0_C0/Resources/pay\u202eroll", "name": "\ufeffint"},
    {"ip_pools": [{"cidr": "0.0.0.0/0", "gateway": "0.0.0.1"}]},
    {"ip_pools": [{"cidr": "10.0.0.0/8", "gateway": "10.0.0.1", "dns": ["10.0.0.2"] * 100}]},
    {"role": "viewer", "group": "not a dn"},
    {"role": "viewer", "user": "bob\u0000"},
    {"restricted": "yes", "position": "1"},
    {"machines": [{"name": "web1\n", "template": "tpl-ubuntu-2404", "cpus": True}]},
    {"name": "web9", "template": "tpl-ubuntu-2404\u0085"},
    {"reason": "r" * 3000},
    {"names": ["tpl-ubuntu-2404\u0000"]},
    {"version": 99, "as_of": None},
    {"as_of": "0001-01-01T00:00:00+01:00"},
    {"stage": "int", "configuration_version": 99},
]
JUNK_QUERIES: list[dict[str, str]] = [
    {"limit": "-5", "min_position": "minus", "as_of": "not a time", "version": "0", "from": "x", "cursor": "0"},
    {"actor": "a\u0000", "stage": "a\u0000", "type": "a\u0000", "reason": "a\u0000", "service": "\u202e"},
    {"as_of": "0001-01-01T00:00:00+01:00", "from": "9999-12-31T23:59:59-01:00", "version": "99", "to": "99"},
    {"as_of": "9999-12-31T23:59:59-01:00", "from": "1", "reason": "r" * 3000},
]

# If-Match lists that never match (or are malformed): 412 or 422, never a change.
JUNK_IF_MATCH = ['"998", W/"999"', '"1", abc', '*, "1"', '"1",,', 'W/"x"', ", ".join(['"998"'] * 100)]


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
            writes = method in ("post", "put", "patch")
            junk: list[tuple[Any, dict[str, str], dict[str, str]]] = (
                [(b, JUNK_QUERIES[0], {}) for b in JUNK_BODIES] if writes else [(None, q, {}) for q in JUNK_QUERIES]
            )
            if method != "get":
                junk += [(None, {}, {"If-Match": tag}) for tag in JUNK_IF_MATCH]
            for body, query, headers in junk:
                head = app.head()
                response = client.request(method.upper(), path, json=body, params=query, headers=headers, auth=AUTH)
                checked += 1
                assert response.status_code < 500, (method, path, body, response.text)
                assert response.status_code >= 400 or not headers, (method, path, headers, response.text)
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
    assert checked > 400


def test_oversized_bodies_are_refused_on_every_route(client: TestClient) -> None:
    service = setup_service(client)
    ids = {"{service_id}": service["id"], "{stage}": "int", "{name}": "web1"}
    zero = "00000000-0000-0000-0000-000000000000"
    app = client.app.state.runtime.app  # type: ignore[attr-defined]
    limit = client.app.state.runtime.settings.max_body_bytes  # type: ignore[attr-defined]
    huge = b'{"reason": "' + b"r" * limit + b'"}'
    spec = client.get("/openapi.json").json()
    head = app.head()
    checked = 0
    for template, methods in spec["paths"].items():
        path = template
        for placeholder, value in ids.items():
            path = path.replace(placeholder, value)
        path = path.replace("{configuration_id}", zero).replace("{deployment_id}", zero).replace("{token_id}", zero)
        for method in set(methods) & {"post", "put", "patch"}:
            response = client.request(
                method.upper(), path, content=huge, headers={"content-type": "application/json"}, auth=AUTH
            )
            checked += 1
            assert response.status_code == 413, (method, path, response.text)
            assert response.json()["error"]["code"] == "too_large"
    assert checked > 15
    assert app.head() == head
