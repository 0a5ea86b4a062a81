"""The OpenAPI document says what every route really answers: typed bodies, the error body on
every error status, the streamed content types. (tests/e2e/test_schemathesis.py then checks the
running app against it.)"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.conftest import AUTH
from tests.e2e.test_api import setup_configuration, setup_service

ERROR_REF = "#/components/schemas/ErrorResponse"


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, methods in spec["paths"].items() for method, op in methods.items()]


def test_every_json_answer_names_its_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    untyped = [
        f"{method} {path} {status}"
        for method, path, op in operations(spec)
        for status, response in op["responses"].items()
        if status.startswith("2") and "application/json" in response.get("content", {})
        if "$ref" not in response["content"]["application/json"]["schema"]
    ]
    assert untyped == []


def test_every_error_status_documents_the_error_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    wrong = [
        f"{method} {path} {status}"
        for method, path, op in operations(spec)
        for status, response in op["responses"].items()
        if int(status) >= 400 and response["content"]["application/json"]["schema"] != {"$ref": ERROR_REF}
    ]
    assert wrong == []
    error = spec["components"]["schemas"]["ErrorDetail"]
    assert set(error["properties"]) == {"code", "message", "field", "position"}
    assert set(error["required"]) == {"code", "message", "field"}


def test_every_authenticated_operation_documents_401_and_503(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    missing = [
        f"{method} {path}"
        for method, path, op in operations(spec)
        if path != "/healthz" and not {"401", "503"} <= set(op["responses"])
    ]
    assert missing == []
    commands = [(m, p, op) for m, p, op in operations(spec) if m != "GET"]
    assert all("409" in op["responses"] for _, _, op in commands)
    versioned = [op for _, _, op in commands if any(p["name"] == "If-Match" for p in op.get("parameters", []))]
    assert len(versioned) >= 15
    assert all("412" in op["responses"] for op in versioned)


def test_streams_document_the_content_types_they_send(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    export = spec["paths"]["/api/v1/audit/export"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"application/x-ndjson", "text/csv"}
    events = spec["paths"]["/api/v1/deployments/{deployment_id}/events"]["get"]["responses"]["200"]["content"]
    assert set(events) == {"text/event-stream"}
    for fmt, media_type in (("jsonl", "application/x-ndjson"), ("csv", "text/csv")):
        response = client.get("/api/v1/audit/export", params={"format": fmt}, auth=AUTH)
        assert response.headers["content-type"].split(";")[0] == media_type


def test_answers_carry_exactly_the_documented_fields(client: TestClient) -> None:
    service = setup_service(client)
    setup_configuration(client, service["id"])
    spec = client.get("/openapi.json").json()
    documented = set(spec["components"]["schemas"]["ServiceSummary"]["properties"])
    items = client.get("/api/v1/services", auth=AUTH).json()["items"]
    # The read model's case-folded sort column (name_key) is storage, not part of the answer.
    assert set(items[0]) == documented
    assert "name_key" not in items[0]


def test_405_allows_every_method_of_the_path(client: TestClient) -> None:
    service = setup_service(client)
    response = client.put(f"/api/v1/services/{service['id']}", json={}, auth=AUTH)
    assert response.status_code == 405
    assert {"GET", "PATCH", "DELETE"} <= {m.strip() for m in response.headers["allow"].split(",")}
    assert response.json()["error"]["code"] == "method_not_allowed"
    # /stages/order also matches /stages/{stage}; the order itself is only ever PUT.
    response = client.post(f"/api/v1/services/{service['id']}/stages/order", json={}, auth=AUTH)
    assert (response.status_code, response.headers["allow"]) == (405, "PUT")


def test_a_body_that_is_not_utf8_is_a_422_naming_the_body(client: TestClient) -> None:
    response = client.post(
        "/api/v1/services", content=b"\xff\xfe{", headers={"content-type": "application/json"}, auth=AUTH
    )
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "the request body is not valid JSON",
        "field": "body",
    }


def test_every_post_documents_the_idempotency_key(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    posts = [op for method, _, op in operations(spec) if method == "POST"]
    assert len(posts) >= 15
    for op in posts:
        (header,) = [p for p in op["parameters"] if p["name"] == "Idempotency-Key"]
        assert (header["in"], header["required"]) == ("header", False)
