"""Included routers whose routes cannot match a path are passed over (api/routeindex.py), and
every answer stays FastAPI's own: the matched route, 405 with Allow, the trailing-slash
redirect, 404, routes added after the index was made, mounts and the route seen by middlewares."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi import routing as fastapi_routing
from fastapi.testclient import TestClient
from starlette.routing import Match
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from api.routeindex import MatchOnce, RouterGuard, index_routes, literal_prefix
from api.routing import OneHopRoute

pytestmark = pytest.mark.skipif(
    not hasattr(fastapi_routing, "_IncludedRouter"), reason="this FastAPI copies included routes (nothing to guard)"
)


class SeenRoute:
    """Records the route template FastAPI put in the scope (what the metrics label by)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[str | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.seen.append(getattr(scope.get("route"), "path", None))


def build(tmp_path: Any, indexed: bool) -> FastAPI:
    app = FastAPI()
    items = APIRouter(route_class=OneHopRoute, prefix="/api/v1/items")
    things = APIRouter(route_class=OneHopRoute, prefix="/api/v1/things")
    root = APIRouter()

    @items.get("")
    def list_items() -> dict[str, str]:
        return {"route": "list items"}

    @items.get("/{item_id}")
    def get_item(item_id: int) -> dict[str, Any]:
        return {"route": "get item", "id": item_id}

    @items.patch("/{item_id}")
    def patch_item(item_id: int) -> dict[str, Any]:
        return {"route": "patch item", "id": item_id}

    @things.get("/special/")
    def special() -> dict[str, str]:
        return {"route": "special"}

    @things.get("/{thing}")
    def thing(thing: str) -> dict[str, str]:
        return {"route": "thing", "thing": thing}

    @root.get("/{anything}/x")
    def anything(anything: str) -> dict[str, str]:
        return {"route": "anything", "anything": anything}

    (tmp_path / "a.txt").write_text("static")
    app.include_router(items)
    app.include_router(things)
    app.mount("/static", StaticFiles(directory=tmp_path), name="static")
    app.include_router(root)
    app.state.items = items
    if indexed:
        assert index_routes(app.router.routes) == 3
    return app


REQUESTS = [
    ("GET", "/api/v1/items"),
    ("GET", "/api/v1/items/3"),
    ("PATCH", "/api/v1/items/3"),
    ("DELETE", "/api/v1/items/3"),  # 405, Allow: GET, PATCH
    ("GET", "/api/v1/items/x"),  # 422
    ("GET", "/api/v1/items/"),  # redirect to /api/v1/items
    ("GET", "/api/v1/things/special"),  # redirect to /api/v1/things/special/
    ("GET", "/api/v1/things/special/"),
    ("GET", "/api/v1/things/a"),
    ("GET", "/api/v1/nothing-here"),
    ("GET", "/api/v1"),
    ("GET", "/nope/x"),  # the root router's parameter in the first segment
    ("GET", "/static/a.txt"),
    ("GET", "/"),
    ("POST", "/api/v1/items/3/"),
]


def answers(app: FastAPI) -> list[tuple[int, str, str | None, str]]:
    seen = SeenRoute(app)
    with TestClient(seen) as client:
        out = []
        for method, path in REQUESTS:
            response = client.request(method, path, follow_redirects=False)
            location = response.headers.get("location", "")
            out.append((response.status_code, response.text, response.headers.get("allow"), location))
    return [(*a[:3], f"{a[3]} route={r}") for a, r in zip(out, seen.seen, strict=True)]


def test_answers_are_fastapis_own(tmp_path: Any) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "indexed").mkdir()
    assert answers(build(tmp_path / "indexed", True)) == answers(build(tmp_path / "plain", False))


def test_a_router_is_passed_over_only_for_paths_it_cannot_match(tmp_path: Any) -> None:
    app = build(tmp_path, True)
    items = app.router.routes[-4]  # items, things, (the mount), root: the first included
    guard = items.matches
    assert isinstance(guard, RouterGuard)
    calls: list[str] = []
    own = guard.matches

    def counting(scope: Scope) -> tuple[Match, Scope]:
        calls.append(scope["path"])
        return own(scope)

    guard.matches = counting
    scope: dict[str, Any] = {"type": "http", "path": "/api/v1/other", "root_path": "", "method": "GET"}
    assert guard(scope) == (Match.NONE, {})
    assert calls == []
    scope = {"type": "http", "path": "/api/v1/items/7", "root_path": "", "method": "GET"}
    assert guard(scope)[0] == Match.FULL
    assert calls == ["/api/v1/items/7"]


def test_routes_added_later_are_matched(tmp_path: Any) -> None:
    app = build(tmp_path, True)
    with TestClient(app) as client:
        assert client.get("/api/v1/items-report").status_code == 404
        items: APIRouter = app.state.items

        @items.get("-report", include_in_schema=False)
        def report() -> dict[str, str]:
            return {"route": "report"}

        assert client.get("/api/v1/items-report").json() == {"route": "report"}


def test_literal_prefix() -> None:
    router = APIRouter()

    @router.get("/a/b/{c}/d")
    def route(c: str) -> None: ...

    assert literal_prefix(router.routes[0]) == "/a/b/"
    assert literal_prefix(object()) is None


def test_a_router_matches_its_routes_once_per_request(tmp_path: Any) -> None:
    app = build(tmp_path, True)
    items = app.router.routes[-4]
    once = items._match  # type: ignore[attr-defined]
    assert isinstance(once, MatchOnce)
    calls: list[str] = []
    own = once.match

    def counting(scope: Scope) -> Any:
        calls.append(scope["path"])
        return own(scope)

    once.match = counting
    with TestClient(app) as client:
        assert client.patch("/api/v1/items/3").json() == {"route": "patch item", "id": 3}
        assert calls == ["/api/v1/items/3"]
        # The redirect's scope (another path) is matched for itself.
        assert client.get("/api/v1/items/3/", follow_redirects=False).status_code == 307
        assert calls[1:] == ["/api/v1/items/3/", "/api/v1/items/3"]
