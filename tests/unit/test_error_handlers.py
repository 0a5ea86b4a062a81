"""The error handlers (api/errors.py) answer on the event loop: no thread hop for a 401, 404 or
422 (Starlette runs a plain `def` handler in anyio's thread pool); what blocks still runs in the
API's thread pool: the audit record of a refusal and the `Allow` header of a 405. The answers are
the same as before: status, body, headers."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette import _exception_handler

from api.errors import install_error_handlers
from domain.errors import AuthenticationError, NotFoundError, PreconditionFailedError, ValidationError


class Body(BaseModel):
    count: int


class Principal:
    user = "alice"


class Refusals:
    """`runtime.app.record_refusal`, recording which thread wrote each refusal."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    def record_refusal(self, command: str, code: str, message: str, user: str, target: Any) -> int:
        self.calls.append((command, code, user, threading.current_thread().name))
        return 41


def signed_in(request: Request) -> None:
    request.state.principal = Principal()


def build() -> tuple[FastAPI, Refusals]:
    app = FastAPI()
    refusals = Refusals()
    app.state.runtime = type("Runtime", (), {"app": refusals, "settings": type("S", (), {"unavailable_seconds": 2})})()
    install_error_handlers(app)

    @app.get("/missing")
    async def missing() -> None:
        raise NotFoundError("no such service", field="service_id")

    @app.get("/invalid")
    async def invalid() -> None:
        raise ValidationError("name: too long", field="name")

    @app.get("/anonymous")
    async def anonymous() -> None:
        raise AuthenticationError("authentication required")

    @app.patch("/items/{service_id}", dependencies=[Depends(signed_in)], name="update_item")
    async def stale(service_id: str) -> None:
        raise PreconditionFailedError("the service is at version 4", field="If-Match")

    @app.get("/items/{service_id}", dependencies=[Depends(signed_in)])
    async def stale_read(service_id: str) -> None:
        raise PreconditionFailedError("the service is at version 4", field="If-Match")

    @app.post("/counts")
    async def counts(body: Body) -> int:
        return body.count

    return app, refusals


@pytest.fixture
def no_anyio_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an error handler ran in anyio's thread pool")

    monkeypatch.setattr(_exception_handler, "run_in_threadpool", refuse)


@pytest.mark.usefixtures("no_anyio_hop")
def test_error_answers_are_unchanged_and_made_without_anyio_thread() -> None:
    app, refusals = build()
    with TestClient(app) as client:
        answer = client.get("/missing")
        assert answer.status_code == 404
        assert answer.json() == {"error": {"code": "not_found", "message": "no such service", "field": "service_id"}}

        answer = client.get("/invalid")
        assert answer.status_code == 422
        assert answer.json() == {"error": {"code": "invalid", "message": "name: too long", "field": "name"}}

        answer = client.get("/anonymous")
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Basic realm="stagekeeper", Bearer'

        answer = client.get("/nothing-here")
        assert answer.status_code == 404
        assert answer.json() == {"error": {"code": "not_found", "message": "Not Found", "field": None}}

        answer = client.post("/counts", json={"count": "many"})
        assert answer.status_code == 422
        assert answer.json()["error"]["field"] == "count"

        answer = client.post("/counts", content=b"{not json", headers={"content-type": "application/json"})
        assert answer.status_code == 422
        assert answer.json() == {
            "error": {"code": "invalid", "message": "the request body is not valid JSON", "field": "body"}
        }

        # A refusal read back by GET is not audited (nothing is written).
        answer = client.get("/items/x")
        assert answer.status_code == 412
        assert "position" not in answer.json()["error"]
    assert refusals.calls == []


@pytest.mark.usefixtures("no_anyio_hop")
def test_a_refused_command_is_audited_in_the_api_thread_pool() -> None:
    app, refusals = build()
    with TestClient(app) as client:
        answer = client.patch("/items/x")
    assert answer.status_code == 412
    assert answer.json() == {
        "error": {
            "code": "precondition_failed",
            "message": "the service is at version 4",
            "field": "If-Match",
            "position": 41,
        }
    }
    [(command, code, user, thread)] = refusals.calls
    assert (command, code, user) == ("update_item", "precondition_failed", "alice")
    assert thread.startswith("stagekeeper-api")


@pytest.mark.usefixtures("no_anyio_hop")
def test_a_405_lists_the_documented_methods() -> None:
    app, _ = build()
    with TestClient(app) as client:
        answer = client.delete("/items/x")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "PATCH, GET"
    assert answer.json()["error"]["code"] == "method_not_allowed"
