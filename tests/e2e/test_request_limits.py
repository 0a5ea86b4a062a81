"""What a request may carry besides its body's fields: times, query filters, If-Match lists,
media types and body sizes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import AUTH, Server, start_server, stop_server
from tests.e2e.test_api import setup_configuration, setup_service

OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


@pytest.fixture
def made(client: TestClient) -> dict[str, str]:
    service = setup_service(client)
    return {"service": service["id"], "configuration": setup_configuration(client, service["id"])["id"]}


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_times_out_of_range_are_422_on_every_route_taking_a_time(
    client: TestClient, made: dict[str, str], when: str
) -> None:
    configuration = f"/api/v1/configurations/{made['configuration']}"
    answers = [
        (client.get("/api/v1/board", params={"as_of": when}, auth=AUTH), "as_of"),
        (client.get(configuration, params={"as_of": when}, auth=AUTH), "as_of"),
        (client.get("/api/v1/audit", params={"from": when}, auth=AUTH), "from"),
        (client.get("/api/v1/audit", params={"to": when}, auth=AUTH), "to"),
        (client.get("/api/v1/audit/export", params={"from": when}, auth=AUTH), "from"),
        (client.post(f"{configuration}/restore", json={"as_of": when}, auth=AUTH), "as_of"),
    ]
    for response, field in answers:
        assert response.status_code == 422, (field, response.text)
        assert response.json()["error"]["field"] == field


def test_times_at_the_edges_of_the_calendar_still_work(client: TestClient, made: dict[str, str]) -> None:
    audit = client.get(
        "/api/v1/audit", params={"from": "0999-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}, auth=AUTH
    )
    assert audit.status_code == 200, audit.text
    assert audit.json()["items"]  # a year-999 lower bound compares as a time, not as text "999-01-..."
    assert client.get("/api/v1/board", params={"as_of": "0001-01-01T00:00:00Z"}, auth=AUTH).json()["services"] == []


FILTERS: list[tuple[str, dict[str, str], str]] = [
    ("/api/v1/audit", {"actor": "a\x00"}, "actor"),
    ("/api/v1/audit", {"stage": "int\x00"}, "stage"),
    ("/api/v1/audit", {"type": "Deployment.\u202e"}, "type"),
    ("/api/v1/deployments", {"stage": "int\x00"}, "stage"),
    ("/api/v1/deployments", {"state": "deployed\n"}, "state"),
    ("/api/v1/inventory", {"stage": "int\u200b"}, "stage"),
    ("/api/v1/audit/export", {"actor": "a\x00"}, "actor"),
    ("/api/v1/audit/export", {"actor": "a", "format": "csv\x00"}, "format"),
    ("/api/v1/services/{service}/stages/int%00", {}, "stage"),
]


def test_control_characters_in_query_filters_are_422_before_anything_is_sent(
    client: TestClient, made: dict[str, str]
) -> None:
    for path, params, field in FILTERS:
        if path == "/api/v1/inventory":
            params = {**params, "service": made["service"]}
        method = "DELETE" if "/stages/" in path else "GET"
        response = client.request(method, path.format(**made), params=params, auth=AUTH)
        assert response.status_code == 422, (path, params, response.text)
        assert response.headers["content-type"] == "application/json"  # not a stream cut short
        assert response.json()["error"]["field"] == field, (path, params)


def test_a_reason_in_the_query_may_span_lines_but_holds_no_controls(client: TestClient, made: dict[str, str]) -> None:
    grant = client.post(f"/api/v1/services/{made['service']}/grants", json={"role": "viewer", "user": "bob"}, auth=AUTH)
    path = f"/api/v1/services/{made['service']}/grants/{grant.json()['id']}"
    refused = client.delete(path, params={"reason": "bob left\x1b[2J"}, auth=AUTH)
    assert (refused.status_code, refused.json()["error"]["field"]) == (422, "reason")
    assert client.delete(path, params={"reason": "bob left\nthe team"}, auth=AUTH).status_code == 200


def test_if_match_takes_the_list_form(client: TestClient, made: dict[str, str]) -> None:
    path = f"/api/v1/services/{made['service']}"

    def patch(if_match: str, description: str) -> httpx.Response:
        response: httpx.Response = client.patch(
            path, json={"description": description}, headers={"If-Match": if_match}, auth=AUTH
        )
        return response

    current = int(client.get(path, auth=AUTH).headers["etag"].strip('"'))
    listed = patch(f'"{current + 50}", "{current}"', "two")
    assert listed.status_code == 200, listed.text
    now = listed.headers["etag"]
    stale = patch(f'"{current}", "{current + 50}"', "three")
    assert (stale.status_code, stale.json()["error"]["field"]) == (412, "If-Match")
    weak = patch(f'W/{now}, W/"{current + 50}"', "three")
    assert weak.status_code == 200, weak.text
    assert patch("*", "four").status_code == 200
    for junk in ['"1", abc', '"1",, "2"', '"x"', ", ".join(['"1"'] * 65)]:
        response = patch(junk, "five")
        assert (response.status_code, response.json()["error"]["field"]) == (422, "If-Match"), junk
    configuration = f"/api/v1/configurations/{made['configuration']}"
    headers = {"If-Match": '"9", "1"'}
    network = client.post(f"{configuration}/networks", json={"name": "back"}, headers=headers, auth=AUTH)
    assert (network.status_code, network.headers["etag"]) == (201, '"2"'), network.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"])
def test_a_body_must_be_sent_as_json(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/api/v1/tokens", content=b'{"name": "ci"}', headers=headers, auth=AUTH)
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_a_transfer_encoding_header_with_no_body_behind_it_is_no_body(client: TestClient) -> None:
    # In process the header reaches the app as sent (a real server refuses a coding it does not know).
    listed = client.get("/api/v1/services", headers={"transfer-encoding": "/LRn"}, auth=AUTH)
    assert listed.status_code == 200, listed.text


def test_a_body_without_length_must_be_json_too(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": '
        yield b'"ci"}'

    response = client.post("/api/v1/tokens", content=chunks(), headers={"content-type": "text/plain"}, auth=AUTH)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert (response.status_code, response.json()["error"]["code"]) == (415, "unsupported_media_type")


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"])
def test_json_bodies_are_accepted_whatever_the_json_type(client: TestClient, content_type: str) -> None:
    response = client.post(
        "/api/v1/tokens", content=b'{"name": "ci"}', headers={"content-type": content_type}, auth=AUTH
    )
    assert response.status_code == 201, response.text


def test_a_body_over_the_limit_is_413_and_one_at_the_limit_is_read(client: TestClient) -> None:
    limit = client.app.state.runtime.settings.max_body_bytes  # type: ignore[attr-defined]
    head = b'{"name": "ci", "reason": "'
    at_limit = head + b"r" * (limit - len(head) - 2) + b'"}'
    assert len(at_limit) == limit
    read = client.post("/api/v1/tokens", content=at_limit, headers={"content-type": "application/json"}, auth=AUTH)
    assert (read.status_code, read.json()["error"]["field"]) == (422, "reason")  # read, and refused by the rules
    over = client.post(
        "/api/v1/tokens", content=at_limit + b" ", headers={"content-type": "application/json"}, auth=AUTH
    )
    assert over.status_code == 413
    assert over.json()["error"] == {
        "code": "too_large",
        "message": f"the request body is larger than {limit} bytes (STAGEKEEPER_MAX_BODY_BYTES)",
        "field": "body",
    }


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[Server]:
    server = start_server(f"sqlite:///{tmp_path}/sk.db", tmp_path / "server.log", STAGEKEEPER_MAX_BODY_BYTES="4096")
    yield server
    stop_server(server)


def test_a_chunked_body_without_length_is_cut_off_at_the_limit(small_server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "ci", "reason": "'
        for _ in range(10):  # 10 kB: over STAGEKEEPER_MAX_BODY_BYTES=4096, well under the default 1 MiB
            yield b"r" * 1000
        yield b'"}'

    with small_server.client() as http:
        try:
            response = http.post("/api/v1/tokens", content=chunks(), headers={"content-type": "application/json"})
        except httpx.HTTPError as error:  # the server may close while we still send: that is a refusal too
            pytest.fail(f"no 413 answer before the connection closed: {error!r}")
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "too_large"
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.request.headers
        small = http.post("/api/v1/tokens", json={"name": "ci"})
        assert small.status_code == 201, small.text
