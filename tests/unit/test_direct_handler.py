"""A planned JSON route's lean request handler (api/direct.py) answers as FastAPI's own does: the
same status, headers and body for answers of every shape (a response model, a status code, a
`Response` returned as it is, no body allowed, a model the answer fails), and for every body
FastAPI reads or refuses (JSON types, no Content-Type, malformed JSON, bytes that are not text)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response, status
from fastapi import routing as fastapi_routing
from fastapi.exceptions import ResponseValidationError
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from api.routing import OneHopRoute


class Item(BaseModel):
    name: str = Field(min_length=1, max_length=8)
    size: int = 1


class Shown(BaseModel):
    name: str
    size: int
    tags: list[str] = []


async def caller(request: Request) -> str:
    return request.headers.get("x-who", "nobody")


router = APIRouter(route_class=OneHopRoute, prefix="/items")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Shown)
def create(body: Item, who: Annotated[str, Depends(caller)], response: Response) -> Shown:
    response.headers["Location"] = f"/items/{body.name}"
    response.headers["X-Who"] = who
    if body.size == 13:
        response.status_code = 202  # the endpoint's status wins over the route's
    return Shown(name=body.name, size=body.size, tags=[who])


@router.put("/{name}", response_model=Shown)
def replace(name: str, body: Item, response: Response) -> Any:
    response.headers["ETag"] = '"7"'
    if body.size == 13:
        response.status_code = 202
    # A dictionary the response model validates (and filters: "secret" is not in it).
    return {"name": name, "size": body.size, "secret": "x"}


@router.patch("/{name}")
def plain_dict(name: str, body: Item) -> dict[str, Any]:
    return {"name": name, "item": body.model_dump(), "ratio": 0.5}


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def remove(name: str) -> None:
    return None


@router.post("/{name}/raw")
def raw(name: str, body: Item) -> Response:
    return JSONResponse({"raw": name, "size": body.size}, status_code=299, headers={"X-Raw": "1"})


@router.post("/{name}/broken", response_model=Shown)
def broken(name: str, body: Item) -> Any:
    return {"name": name}  # no size: the answer fails its model


@router.get("/{name}")
async def native(name: str, who: Annotated[str, Depends(caller)]) -> dict[str, str]:
    return {"name": name, "who": who}


def build(lean: bool) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    if not lean:
        # Any override makes every request take FastAPI's own handler and solver.
        app.dependency_overrides[len] = len
    return app


JSON = {"content-type": "application/json"}
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/items", {"json": {"name": "a", "size": 2}, "headers": {"x-who": "alice"}}),
    ("POST", "/items", {"json": {"name": "a", "size": 13}}),
    ("POST", "/items", {"json": {"name": ""}}),  # a body error
    ("POST", "/items", {"content": b'{"name": "b"}', "headers": {"content-type": "application/merge-patch+json"}}),
    ("POST", "/items", {"content": b'{"name": "b"}', "headers": {"content-type": "application/json; charset=utf-8"}}),
    ("POST", "/items", {"content": b'{"name": "b"}', "headers": {"content-type": "text/plain"}}),
    ("POST", "/items", {"content": b'{"name": "b"}'}),  # no Content-Type at all
    ("POST", "/items", {"content": b"{not json", "headers": JSON}),
    ("POST", "/items", {"content": b'{"name": "\xff\xfe"}', "headers": JSON}),  # not UTF-8
    ("POST", "/items", {"content": b"NaN", "headers": JSON}),
    ("POST", "/items", {"content": b"[1, 2]", "headers": JSON}),
    ("POST", "/items", {}),  # no body
    ("PUT", "/items/x", {"json": {"name": "c", "size": 3}}),
    ("PUT", "/items/x", {"json": {"name": "c", "size": 13}}),
    ("PATCH", "/items/x", {"json": {"name": "d"}}),
    ("DELETE", "/items/x", {}),
    ("POST", "/items/x/raw", {"json": {"name": "e", "size": 5}}),
    ("GET", "/items/x", {"headers": {"x-who": "bob"}}),
]


@pytest.fixture
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    with TestClient(build(True)) as lean, TestClient(build(False)) as fastapi_own:
        yield lean, fastapi_own


def outcome(client: TestClient, method: str, path: str, options: dict[str, Any]) -> tuple[Any, ...]:
    """Status, headers (but the date) and body; or the error the application raised."""
    try:
        response = client.request(method, path, **options)
    except Exception as error:  # compared: both must raise the same
        return ("raised", type(error), str(error))
    headers = sorted((k, v) for k, v in response.headers.items() if k != "date")
    return response.status_code, headers, response.content


@pytest.mark.parametrize("index", range(len(REQUESTS)))
def test_the_lean_handler_answers_as_fastapis_does(clients: tuple[TestClient, TestClient], index: int) -> None:
    method, path, options = REQUESTS[index]
    lean, fastapi_own = clients
    assert outcome(lean, method, path, options) == outcome(fastapi_own, method, path, options)


def test_an_answer_its_model_refuses_fails_the_same_way(clients: tuple[TestClient, TestClient]) -> None:
    failures = []
    for client in clients:
        with pytest.raises(ResponseValidationError) as raised:
            client.post("/items/x/broken", json={"name": "f"})
        failures.append(raised.value.errors())
    assert failures[0] == failures[1]


def test_the_lean_handler_serves_planned_json_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    # FastAPI's own handler asks its telemetry hook about every request; the lean one does not.
    asked: list[object] = []
    original = fastapi_routing.get_telemetry_data  # type: ignore[attr-defined]

    def counted() -> Any:
        asked.append(1)
        return original()

    monkeypatch.setattr(fastapi_routing, "get_telemetry_data", counted)
    with TestClient(build(True)) as lean, TestClient(build(False)) as fastapi_own:
        assert lean.put("/items/x", json={"name": "c"}).status_code == 200
        assert lean.get("/items/x").status_code == 200
        assert asked == []
        assert fastapi_own.put("/items/x", json={"name": "c"}).status_code == 200
        assert asked != []
