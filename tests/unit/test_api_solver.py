"""Dependencies solved by a route's plan (api/solver.py) give what FastAPI's own solver gives:
the same values, the same errors, the same order of calls, the same per-request cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path as FilePath
from typing import Annotated, Any
from uuid import UUID, uuid4

import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from api import solver
from api.app import create_app
from api.routing import OneHopRoute
from tests.support import runtime_for, settings_for

calls: list[str] = []


async def app_wide(request: Request) -> None:
    calls.append("app_wide")
    if request.query_params.get("refuse") == "app":
        raise ValueError("refused by the app-wide dependency")


async def shared(request: Request) -> str:
    calls.append("shared")
    return request.headers.get("x-who", "nobody")


async def needs_shared(who: Annotated[str, Depends(shared)], limit: Annotated[int, Query(ge=1, le=5)] = 2) -> str:
    calls.append("needs_shared")
    return f"{who}:{limit}"


def plain(request: Request) -> str:
    calls.append("plain")
    return request.method


async def uncached(request: Request) -> int:
    calls.append("uncached")
    return len(calls)


class Body(BaseModel):
    name: str = Field(min_length=1, max_length=8)
    count: int = 1


router = APIRouter(route_class=OneHopRoute, prefix="/things")


@router.patch("/{thing_id}")
def change(
    thing_id: UUID,
    body: Body,
    response: Response,
    request: Request,
    who: Annotated[str, Depends(shared)],
    chained: Annotated[str, Depends(needs_shared)],
    method: Annotated[str, Depends(plain)],
    first: Annotated[int, Depends(uncached, use_cache=False)],
    second: Annotated[int, Depends(uncached, use_cache=False)],
    tag: Annotated[str | None, Header(alias="X-Tag")] = None,
    flag: bool = Query(False),
    names: list[str] = Query([]),
) -> dict[str, Any]:
    response.headers["X-Seen"] = who
    response.status_code = 202 if flag else 200
    return {
        "id": str(thing_id), "body": body.model_dump(), "who": who, "chained": chained, "method": method,
        "uncached": [first, second], "tag": tag, "names": names, "path": request.url.path,
    }  # fmt: skip


@router.get("/{thing_id}/plain")
async def read(thing_id: UUID, who: Annotated[str, Depends(shared)]) -> dict[str, str]:
    return {"id": str(thing_id), "who": who}


async def in_path(thing_id: UUID, n: Annotated[int, Path(ge=1, le=10)]) -> str:
    calls.append("in_path")
    return f"{thing_id}/{n}"


@router.get("/{thing_id}/count/{n}/{label}")
def count(
    label: Annotated[str, Path(alias="label", min_length=2)], seen: Annotated[str, Depends(in_path)]
) -> dict[str, str]:
    return {"label": label, "seen": seen}


def build(planned: bool) -> FastAPI:
    app = FastAPI(dependencies=[Depends(app_wide)])
    app.include_router(router)

    @app.exception_handler(ValueError)
    async def refused(request: Request, error: ValueError) -> Response:
        return Response(str(error), status_code=418)

    if not planned:
        # Any override makes every request take FastAPI's own solver (overrides name declared calls).
        app.dependency_overrides[len] = len
    return app


THING = uuid4()
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("PATCH", f"/things/{THING}", {"json": {"name": "a"}}),
    ("PATCH", f"/things/{THING}?flag=true&names=x&names=y&limit=5", {"json": {"name": "abc", "count": 3}}),
    ("PATCH", f"/things/{THING}", {"json": {"name": "a"}, "headers": {"x-who": "alice", "x-tag": "t1"}}),
    ("PATCH", f"/things/{THING}?limit=9", {"json": {"name": ""}}),  # a query and a body error together
    ("PATCH", "/things/not-a-uuid?flag=maybe", {"json": {"count": "x"}}),
    ("PATCH", f"/things/{THING}", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
    ("PATCH", f"/things/{THING}", {}),  # no body
    ("PATCH", f"/things/{THING}", {"content": b'{"name": "a"}', "headers": {"content-type": "text/plain"}}),
    ("PATCH", f"/things/{THING}?refuse=app", {"json": {"name": "a"}}),
    ("GET", f"/things/{THING}/plain", {"headers": {"x-who": "bob"}}),
    ("GET", "/things/nope/plain", {}),
    # Path parameters read by a sub-dependency and the route, with constraints and an alias.
    ("GET", f"/things/{THING}/count/3/ab", {}),
    ("GET", f"/things/{THING}/count/0/ab", {}),
    ("GET", "/things/nope/count/x/a", {}),
]


@pytest.fixture
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    with TestClient(build(True)) as planned, TestClient(build(False)) as fastapi_own:
        yield planned, fastapi_own


def test_planned_routes_do_not_call_fastapis_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    assert solver._fastapi_solve is not None
    original = solver._fastapi_solve
    used: list[object] = []

    async def counted(**kwargs: Any) -> Any:
        used.append(kwargs["dependant"].call)
        return await original(**kwargs)

    monkeypatch.setattr(solver, "_fastapi_solve", counted)
    with TestClient(build(True)) as planned, TestClient(build(False)) as fastapi_own:
        assert planned.patch(f"/things/{THING}", json={"name": "a"}).status_code == 200
        assert planned.get(f"/things/{THING}/plain").status_code == 200
        assert used == []
        assert fastapi_own.patch(f"/things/{THING}", json={"name": "a"}).status_code == 200
        assert used != []


@pytest.mark.parametrize("index", range(len(REQUESTS)))
def test_a_planned_route_answers_and_calls_as_fastapi_does(clients: tuple[TestClient, TestClient], index: int) -> None:
    method, path, options = REQUESTS[index]
    answers = []
    for client in clients:
        calls.clear()
        response = client.request(method, path, **options)
        answers.append((response.status_code, response.headers.get("x-seen"), response.text, list(calls)))
    assert answers[0] == answers[1]


async def generator() -> Any:
    yield 1


def test_dependencies_the_plan_cannot_hold_keep_fastapis_solver() -> None:
    app = FastAPI()
    odd = APIRouter(route_class=OneHopRoute)

    @odd.get("/generator")
    def with_generator(value: Annotated[int, Depends(generator)]) -> int:
        return value

    app.include_router(odd)
    assert TestClient(app).get("/generator").json() == 1
    route = next(r for r in odd.routes if getattr(r, "path", "") == "/generator")
    assert solver.compile_plan(route.dependant) is None  # type: ignore[attr-defined]


def test_every_api_command_route_of_stagekeeper_is_planned(tmp_path: FilePath) -> None:
    runtime = runtime_for(f"sqlite:///{tmp_path}/sk.db")
    try:
        app = create_app(settings_for(runtime.settings.database_url), runtime=runtime, start_workers=False)
        unplanned = []
        for route in app.routes:
            dependant = getattr(route, "dependant", None)  # as declared (the plan is of the runtime one)
            methods = getattr(route, "methods", None) or set()
            if dependant is None or not str(getattr(route, "path", "")).startswith("/api/"):
                continue
            if methods & {"POST", "PUT", "PATCH", "DELETE"} and solver.compile_plan(dependant) is None:
                unplanned.append(route.path)  # type: ignore[attr-defined]
        assert unplanned == []
    finally:
        runtime.close()


def test_path_parameters_are_read_by_the_plan() -> None:
    route = next(r for r in router.routes if getattr(r, "path", "") == "/things/{thing_id}/count/{n}/{label}")
    node = solver._node(route.dependant)  # type: ignore[attr-defined]
    assert node.path_params is not None
    assert [p.alias for p in node.path_params] == ["label"]
    sub = node.subs[0].node
    assert sub.path_params is not None
    assert [(p.alias, p.loc) for p in sub.path_params] == [("thing_id", ("path", "thing_id")), ("n", ("path", "n"))]
