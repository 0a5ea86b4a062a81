"""The routes' state is built at start (api/warmup.py), by a request that is not counted."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from api.warmup import WARM_PATH, warm_routes
from tests.support import settings_for

AUTH = ("admin", "secret-pw")


def included_routers(app: object) -> list[object]:
    return [route for route in app.router.routes if type(route).__name__ == "_IncludedRouter"]  # type: ignore[attr-defined]


def test_no_route_matches_the_warm_up_path(runtime: Runtime) -> None:
    app = create_app(settings_for(runtime.settings.database_url), runtime=runtime)
    assert asyncio.run(warm_routes(app.router)) == 404
    with TestClient(app) as client:
        assert client.get(WARM_PATH).status_code == 404


def test_start_up_builds_every_included_routers_state(runtime: Runtime) -> None:
    app = create_app(settings_for(runtime.settings.database_url), runtime=runtime)
    routers = included_routers(app)
    # FastAPI releases without lazily built included routers have nothing to warm.
    if not routers or not hasattr(routers[0], "_effective_candidates_version"):
        pytest.skip("this FastAPI builds its routes' state when they are included")
    assert all(router._effective_candidates_version is None for router in routers)  # type: ignore[attr-defined]
    with TestClient(app) as client:
        assert all(router._effective_candidates_version is not None for router in routers)  # type: ignore[attr-defined]
        # The warm-up went past the middlewares: no request of it is counted.
        metrics = client.get("/metrics", auth=AUTH).text
        assert WARM_PATH not in metrics
        assert 'status="404"' not in metrics
