"""The OpenAPI document: FastAPI's, plus what middleware adds to requests, which FastAPI cannot
see (the Idempotency-Key header every POST accepts, api/idempotency.py)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from domain.requests import HEADER, KEY_PATTERN

IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Send the same key again (with the same body) to get the first answer instead of a second "
    "effect; `Idempotent-Replayed: true` marks a repeated answer",
    "schema": {"type": "string", "pattern": f"^{KEY_PATTERN.pattern}$"},
}


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for operations in document["paths"].values():
                post = operations.get("post")
                if post is not None:
                    post.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
