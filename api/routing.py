"""The route class of every API and console router: one thread-pool hop per request.

FastAPI runs a plain `def` endpoint in its thread pool, then validates the answer against the
route's response model in the thread pool again: two hops there and back per request, each a
wait for the interpreter lock while other threads (the projections, the process manager) run.
Here a plain endpoint becomes a coroutine that runs the endpoint itself in the thread pool, so
the blocking work (event store, read models, vCenter) stays off the event loop and the response
model is checked on the loop: one hop instead of two, the same checks.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


def in_thread_pool(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint` as a coroutine function running it in the thread pool. `functools.wraps` keeps
    its signature and module, from which FastAPI reads the parameters and their annotations."""

    @functools.wraps(endpoint)
    async def call(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return call


class OneHopRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        plain = not (
            inspect.iscoroutinefunction(endpoint)
            or inspect.isgeneratorfunction(endpoint)
            or inspect.isasyncgenfunction(endpoint)
        )
        super().__init__(path, in_thread_pool(endpoint) if plain else endpoint, **kwargs)
