"""Requests solve fewer dependencies than the OpenAPI document declares (api/routing.py), with the
same answers: the security schemes are checked in line, If-Match is read from the request."""

from __future__ import annotations

from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from fastapi.testclient import TestClient

from api.auth import Principal
from api.deps import get_if_match, get_principal, if_match_at_runtime, principal_at_runtime
from api.routes import services
from api.routing import at_runtime
from tests.e2e.conftest import AUTH
from tests.support import stages


def calls(dependant: Dependant) -> list[Any]:
    found = []
    for sub in dependant.dependencies:
        found.append(sub.call)
        found.extend(calls(sub))
    return found


def patch_route() -> APIRoute:
    for route in services.router.routes:
        if isinstance(route, APIRoute) and route.path.endswith("/{service_id}") and "PATCH" in (route.methods or set()):
            return route
    raise AssertionError("no PATCH /api/v1/services/{service_id}")


def test_a_command_runs_without_the_declared_sub_dependencies() -> None:
    declared = patch_route().dependant
    running = at_runtime(declared)
    assert get_principal in calls(declared)
    assert get_if_match in calls(declared)
    assert any(isinstance(call, SecurityBase) for call in calls(declared))  # what the document is made of
    assert principal_at_runtime in calls(running)
    assert if_match_at_runtime in calls(running)
    assert get_principal not in calls(running)
    assert get_if_match not in calls(running)
    assert not any(isinstance(call, SecurityBase) for call in calls(running))
    assert len(calls(running)) < len(calls(declared))


def test_the_document_still_declares_both_ways_to_authenticate_and_if_match(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert set(document["components"]["securitySchemes"]) == {"HTTPBasic", "HTTPBearer"}
    patch = document["paths"]["/api/v1/services/{service_id}"]["patch"]
    assert patch["security"] == [{"HTTPBasic": []}, {"HTTPBearer": []}]
    assert "If-Match" in [p["name"] for p in patch["parameters"]]


def test_malformed_basic_credentials_get_the_security_schemes_answer(client: TestClient) -> None:
    for header in ("Basic !!!", "Basic YWRtaW4=", "Basic"):
        response = client.get("/api/v1/services", headers={"Authorization": header})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Basic"
        assert response.json()["error"] == {"code": "http_error", "message": "Not authenticated", "field": None}
    assert client.get("/api/v1/services", auth=AUTH).status_code == 200


def test_if_match_is_read_from_the_request(client: TestClient) -> None:
    created = client.post("/api/v1/services", json={"name": "payroll", "stages": stages("a")}, auth=AUTH)
    url = f"/api/v1/services/{created.json()['id']}"
    # Several listed: the current one is compared with, so a list holding it succeeds.
    listed = client.patch(url, json={"description": "v2"}, headers={"If-Match": '"7", W/"1"'}, auth=AUTH)
    assert listed.status_code == 200, listed.text
    stale = client.patch(url, json={"description": "v3"}, headers={"If-Match": '"1"'}, auth=AUTH)
    assert stale.status_code == 412
    assert stale.json()["error"]["field"] == "If-Match"
    malformed = client.patch(url, json={"description": "v3"}, headers={"If-Match": "yesterday"}, auth=AUTH)
    assert malformed.status_code == 422
    anything = client.patch(url, json={"description": "v3"}, headers={"If-Match": "*"}, auth=AUTH)
    assert anything.status_code == 200


def test_an_override_of_a_declared_dependency_still_applies(client: TestClient) -> None:
    app: Any = client.app
    assert client.get("/api/v1/services").status_code == 401
    app.dependency_overrides[get_principal] = lambda: Principal("victor", True, "none")
    try:
        assert client.get("/api/v1/services").status_code == 200
    finally:
        app.dependency_overrides.clear()
    assert client.get("/api/v1/services").status_code == 401
