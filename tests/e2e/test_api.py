"""The HTTP API, in process: every route, and every kind of refusal."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import AUTH
from tests.support import THREE_TIER, stages

PUBLIC = {"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def setup_service(client: TestClient) -> dict[str, Any]:
    assert client.post("/api/v1/templates/import", json={"all": True}, auth=AUTH).status_code == 200
    response = client.post(
        "/api/v1/services",
        json={
            "name": "payroll",
            "description": "Pay",
            "stages": stages("int", "test", "prod", restricted=("prod",)),
        },
        auth=AUTH,
    )
    assert response.status_code == 201, response.text
    service = dict(response.json())
    # prod is restricted: even an administrator must hold stage-operator on it to put anything there.
    grant = {"role": "stage-operator", "user": "admin", "stage": "prod"}
    assert client.post(f"/api/v1/services/{service['id']}/grants", json=grant, auth=AUTH).status_code == 201
    return service


def setup_configuration(client: TestClient, service_id: str) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/services/{service_id}/configurations",
        json={"name": "p3", "networks": [{"name": "front"}], "machines": THREE_TIER},
        auth=AUTH,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def wait_state(client: TestClient, deployment_id: str, state: str) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = dict(client.get(f"/api/v1/deployments/{deployment_id}", auth=AUTH).json())
        if body["state"] == state:
            return body
        time.sleep(0.05)
    raise AssertionError(f"deployment never reached {state}: {body}")


def test_every_api_route_refuses_anonymous_callers(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    routes = [(p, m.upper()) for p, methods in spec["paths"].items() if p not in PUBLIC for m in methods]
    assert len(routes) >= 20
    for route_path, method in routes:
        path = route_path.replace("{service_id}", "00000000-0000-0000-0000-000000000001")
        path = path.replace("{configuration_id}", "00000000-0000-0000-0000-000000000001")
        path = path.replace("{deployment_id}", "00000000-0000-0000-0000-000000000001")
        path = path.replace("{token_id}", "00000000-0000-0000-0000-000000000001")
        path = path.replace("{stage}", "int").replace("{name}", "web1")
        response = client.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
        assert "Basic" in response.headers["www-authenticate"]


def test_health_and_openapi_are_public(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/api/v1/deployments/{deployment_id}/promote" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_the_api_reference_loads_every_asset_from_stagekeeper_itself(client: TestClient) -> None:
    import re

    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    for asset in assets:
        # Air-gapped sites have no CDN: every asset is a path on this server, and it is served.
        assert asset.startswith("/"), f"{asset} is not served by Stagekeeper"
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 0
    assert client.get("/redoc").status_code == 404


def test_the_walkthrough_deploy_promote_undeploy(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    response = client.post(
        f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "int"}, auth=AUTH
    )
    assert response.status_code == 202
    deployment = response.json()
    assert deployment["state"] == "requested"
    assert response.headers["location"] == f"/api/v1/deployments/{deployment['id']}"
    body = wait_state(client, deployment["id"], "deployed")
    assert {m["state"] for m in body["machines"]} == {"provisioned"}
    promoted = client.post(f"/api/v1/deployments/{deployment['id']}/promote", json={"reason": "QA ok"}, auth=AUTH)
    assert promoted.status_code == 202
    moved = wait_state(client, deployment["id"], "deployed")
    listed = client.get(
        "/api/v1/deployments",
        params={"service": service["id"], "stage": "test", "min_position": moved["position"]},
        auth=AUTH,
    ).json()
    assert [d["id"] for d in listed["items"]] == [deployment["id"]]
    assert listed["position"] >= promoted.json()["position"]
    undeploy = client.post(f"/api/v1/deployments/{deployment['id']}/undeploy", auth=AUTH)
    assert undeploy.status_code == 202
    wait_state(client, deployment["id"], "undeployed")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "stages": []}, "stages"),
        ({"name": "x"}, "stages"),
        ({"name": "x", "stages": [{"name": "a"}]}, "stages[0].resource_pool"),
        ({"name": "x", "stages": [{"name": "a", "resource_pool": "relative"}]}, "stages[0].resource_pool"),
        (
            {
                "name": "x",
                "stages": [{"name": "a", "resource_pool": "/DC0/host/C/Resources", "restricted": "maybe"}],
            },
            "stages[0].restricted",
        ),
        ({"name": "", "stages": stages("a")}, "name"),
        ({"name": "x", "stages": stages("a"), "colour": "red"}, "colour"),
        ({"name": 5, "stages": stages("a")}, "name"),
    ],
)
def test_bad_service_bodies_get_422_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    response = client.post("/api/v1/services", json=body, auth=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert client.get("/api/v1/services", auth=AUTH).json()["items"] == []


def test_malformed_json_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/api/v1/services", content=b'{"name": ', headers={"content-type": "application/json"}, auth=AUTH
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "body"


def test_unknown_ids_are_404(client: TestClient) -> None:
    missing = "00000000-0000-0000-0000-00000000abcd"
    for path in (
        f"/api/v1/services/{missing}",
        f"/api/v1/configurations/{missing}",
        f"/api/v1/deployments/{missing}",
    ):
        response = client.get(path, auth=AUTH)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/services/not-a-uuid", auth=AUTH).status_code == 422


def test_conflicts_are_409_and_stale_versions_412(client: TestClient) -> None:
    service = setup_service(client)
    again = client.post("/api/v1/services", json={"name": "PAYROLL", "stages": stages("a")}, auth=AUTH)
    assert again.status_code == 409
    patched = client.patch(
        f"/api/v1/services/{service['id']}",
        json={"description": "v2"},
        headers={"If-Match": '"1"'},
        auth=AUTH,
    )
    assert patched.status_code == 200
    stale = client.patch(
        f"/api/v1/services/{service['id']}",
        json={"description": "v3"},
        headers={"If-Match": '"1"'},
        auth=AUTH,
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["field"] == "If-Match"
    bad = client.patch(
        f"/api/v1/services/{service['id']}",
        json={"description": "v3"},
        headers={"If-Match": "yesterday"},
        auth=AUTH,
    )
    assert bad.status_code == 422


def test_promoting_past_the_last_stage_is_409(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    deployment = client.post(
        f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "prod"}, auth=AUTH
    ).json()
    wait_state(client, deployment["id"], "deployed")
    response = client.post(f"/api/v1/deployments/{deployment['id']}/promote", auth=AUTH)
    assert response.status_code == 409
    assert "last stage" in response.json()["error"]["message"]


def test_configuration_versions_are_readable_over_http(client: TestClient) -> None:
    service = setup_service(client)
    configuration = setup_configuration(client, service["id"])
    path = f"/api/v1/configurations/{configuration['id']}"
    assert client.delete(f"{path}/machines/web2", auth=AUTH).status_code == 200
    assert client.post(f"{path}/networks", json={"name": "back"}, auth=AUTH).status_code == 201
    latest = client.get(path, auth=AUTH)
    assert latest.headers["etag"] == '"3"'
    old = client.get(path, params={"version": 1}, auth=AUTH).json()
    assert [m["name"] for m in old["machines"]] == ["web1", "web2", "app1", "db1"]
    # A version out of range is refused like any other bad value (422), on every route taking one.
    assert client.get(path, params={"version": 9}, auth=AUTH).status_code == 422
    bad = client.put(
        f"{path}/machines/web1", json={"name": "web1", "template": "tpl-ubuntu-2404", "cpus": 0}, auth=AUTH
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "machine.cpus"


def test_stage_routes(client: TestClient) -> None:
    service = setup_service(client)
    path = f"/api/v1/services/{service['id']}/stages"
    added = client.post(path, json={"name": "uat", "resource_pool": "/DC0/host/DC0_C0/Resources/uat"}, auth=AUTH)
    assert added.status_code == 201
    assert [s["name"] for s in added.json()["stages"]] == ["int", "test", "prod", "uat"]
    order = client.put(f"{path}/order", json={"order": ["int", "uat", "test", "prod"]}, auth=AUTH)
    assert [s["name"] for s in order.json()["stages"]] == ["int", "uat", "test", "prod"]
    renamed = client.patch(f"{path}/uat", json={"name": "acceptance"}, auth=AUTH)
    assert renamed.json()["stages"][1]["name"] == "acceptance"
    assert client.delete(f"{path}/acceptance", params={"reason": "merged"}, auth=AUTH).status_code == 200
    unknown_dc = client.post(path, json={"name": "dr", "resource_pool": "/DC7/host/C/Resources"}, auth=AUTH)
    assert unknown_dc.status_code == 422
    assert unknown_dc.json()["error"]["field"] == "resource_pool"


def test_templates_import_by_name_and_refuse_unknown_names(client: TestClient) -> None:
    response = client.post("/api/v1/templates/import", json={"names": ["tpl-rhel-9"]}, auth=AUTH)
    assert response.status_code == 200
    assert [t["name"] for t in client.get("/api/v1/templates", auth=AUTH).json()["items"]] == ["tpl-rhel-9"]
    unknown = client.post("/api/v1/templates/import", json={"names": ["tpl-nope"]}, auth=AUTH)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "names"
    assert client.post("/api/v1/templates/import", json={}, auth=AUTH).status_code == 422


def test_tokens_authenticate_until_revoked(client: TestClient) -> None:
    created = client.post("/api/v1/tokens", json={"name": "ci", "expires_in_days": 30}, auth=AUTH)
    assert created.status_code == 201
    token = created.json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/services", headers=bearer).status_code == 200
    assert client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=bearer).status_code == 200
    assert client.get("/api/v1/services", headers=bearer).status_code == 401
    assert client.get("/api/v1/services", auth=("admin", "wrong")).status_code == 401
    too_long = client.post("/api/v1/tokens", json={"name": "x", "expires_in_days": 9999}, auth=AUTH)
    assert too_long.json()["error"]["field"] == "expires_in_days"
