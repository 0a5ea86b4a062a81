"""The board over HTTP a page at a time: services in name order behind a cursor, filters applied
before the page is cut, each stage's deployments bounded with counts of every live one."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.responses.deployments import Board
from tests.e2e.conftest import AUTH
from tests.e2e.test_api import setup_configuration, setup_service, wait_state
from tests.support import stages


def pages(client: TestClient, **params: Any) -> list[list[str]]:
    """Every page's service names, following `next` to the end."""
    names: list[list[str]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/board", params=query, auth=AUTH).json()
        assert Board.model_validate(body).model_dump(mode="json") == body  # sent without the model: as it allows
        names.append([s["name"] for s in body["services"]])
        cursor = body["next"]
        if cursor is None:
            return names


def test_the_board_pages_services_by_name_and_bounds_each_stage(client: TestClient) -> None:
    payroll = setup_service(client)
    for name in ("billing", "Bravo", "ledger", "beta_x"):
        created = client.post(
            "/api/v1/services",
            json={"name": name, "description": "", "stages": stages("int", pools=f"{name}-")},
            auth=AUTH,
        )
        assert created.status_code == 201, created.text
    configuration = setup_configuration(client, payroll["id"])
    made = [
        client.post(
            f"/api/v1/configurations/{configuration['id']}/deployments", json={"stage": "int"}, auth=AUTH
        ).json()
        for _ in range(3)
    ]
    last = max(wait_state(client, d["id"], "deployed")["position"] for d in made)

    assert pages(client, limit=2, min_position=last) == [["beta_x", "billing"], ["Bravo", "ledger"], ["payroll"]]
    assert pages(client, limit=200) == [["beta_x", "billing", "Bravo", "ledger", "payroll"]]
    # A name prefix, any case; `_` is a character, not a wildcard.
    assert pages(client, q="B", limit=1) == [["beta_x"], ["billing"], ["Bravo"]]
    assert pages(client, q="beta_") == [["beta_x"]]
    assert pages(client, q="bet%") == [[]]

    board = client.get("/api/v1/board", params={"q": "pay", "per_stage": 2}, auth=AUTH).json()
    [shown] = board["services"]
    cell = {s["name"]: s for s in shown["stages"]}
    oldest_first = [d["id"] for d in made][:2]
    assert [d["id"] for d in cell["int"]["deployments"]] == oldest_first
    assert (cell["int"]["count"], cell["int"]["counts"], cell["int"]["more"]) == (3, {"deployed": 3}, 1)
    assert (cell["test"]["count"], cell["test"]["counts"], cell["test"]["more"], cell["test"]["deployments"]) == (
        0,
        {},
        0,
        [],
    )
    only_int = client.get("/api/v1/board", params={"q": "pay", "stage": "INT", "per_stage": 0}, auth=AUTH).json()
    [stage] = only_int["services"][0]["stages"]
    assert (stage["name"], stage["deployments"], stage["count"], stage["more"]) == ("int", [], 3, 3)


def test_the_board_refuses_bad_paging_naming_the_field(client: TestClient) -> None:
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"per_stage": 101}, "per_stage"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJhIiwgIm5vdC1hbi1pZCJd"}, "cursor"),  # ["a", "not-an-id"]
    ):
        response = client.get("/api/v1/board", params=params, auth=AUTH)
        assert response.status_code == 422, params
        assert response.json()["error"]["field"] == field, params
