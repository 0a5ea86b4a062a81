"""GET /api/v1/deployments a page at a time: keyset cursors that stay stable while others write."""

from __future__ import annotations

from uuid import UUID

from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from tests.e2e.conftest import AUTH
from tests.support import machine, stages


def deploy_some(runtime: Runtime, count: int) -> tuple[UUID, list[str]]:
    app = runtime.app
    app.import_templates(None, True, actor="setup")
    service = app.register_service("paged", "", stages("int"), actor="setup").value.id
    configuration = app.create_configuration(service, "c", "", [{"name": "front"}], [machine("web1")], "setup")
    ids = [str(app.deploy(configuration.value.id, "int", actor="setup").value.id) for _ in range(count)]
    runtime.catch_up()
    return configuration.value.id, ids


def test_pages_of_deployments_list_each_one_exactly_once_while_new_ones_arrive(
    client: TestClient, runtime: Runtime
) -> None:
    configuration, ids = deploy_some(runtime, 5)
    first = client.get("/api/v1/deployments", params={"limit": 2}, auth=AUTH).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    # A deployment requested between two pages must not shift the rows of the later pages.
    runtime.app.deploy(configuration, "int", actor="setup")
    runtime.catch_up()
    seen = [d["id"] for d in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get("/api/v1/deployments", params={"limit": 2, "cursor": cursor}, auth=AUTH).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen))
    assert set(ids) <= set(seen)
    whole = client.get("/api/v1/deployments", params={"limit": 100}, auth=AUTH).json()
    assert whole["next_cursor"] is None
    assert [d["id"] for d in whole["items"] if d["id"] in seen] == seen


def test_a_cursor_that_no_page_gave_is_refused_naming_the_field(client: TestClient) -> None:
    response = client.get("/api/v1/deployments", params={"cursor": "not-a-cursor"}, auth=AUTH)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "cursor"
