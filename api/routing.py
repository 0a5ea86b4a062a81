"""The route class of every API and console router: one thread-pool hop per request.

FastAPI runs a plain `def` endpoint in its thread pool, then validates the answer against the
route's response model in the thread pool again: two hops there and back per request, each a
wait for the interpreter lock while other threads (the projections, the process manager) run.
Here a plain endpoint becomes a coroutine that runs the endpoint itself in the thread pool, so
the blocking work (event store, read models, vCenter) stays off the event loop and the response
model is checked on the loop: one hop instead of two, the same checks.

And a request solves fewer dependencies than the OpenAPI document declares: the caller's
dependency declares the two security schemes (HTTP Basic, Bearer) and If-Match its header and
the runtime, so the document lists them; each is a further dependency FastAPI solves on every
request (~7 a command). The handler runs `api.deps.RUNTIME_EQUIVALENTS` instead: the same checks
in the same order, done in line.

Those dependencies are solved by a plan made when the handler is built (api/solver.py).

The hop itself is `run_in_pool`: the event loop's `run_in_executor` on a bounded pool of its
own, without anyio's per-call capacity limiter and cancel scopes (starlette's
`run_in_threadpool`).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from api import solver
from api.deps import RUNTIME_EQUIVALENTS

solver.install()

P = ParamSpec("P")
T = TypeVar("T")

# As many threads as anyio's default limiter lets starlette's `run_in_threadpool` use.
POOL_THREADS = 40
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def thread_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="stagekeeper-api")
    return _pool


async def run_in_pool(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` in the API's thread pool, in a copy of the caller's context
    (the request id, the pending request: context variables), as `run_in_threadpool` does.
    Cancelled while it runs, it waits for the call to finish before it lets the cancellation
    through, as anyio does: a command is never abandoned half way by its request."""
    call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
    future = asyncio.get_running_loop().run_in_executor(thread_pool(), call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if not future.done():
            await asyncio.wait([future])
        raise


def in_thread_pool(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint` as a coroutine function running it in the thread pool. `functools.wraps` keeps
    its signature and module, from which FastAPI reads the parameters and their annotations."""

    @functools.wraps(endpoint)
    async def call(*args: Any, **kwargs: Any) -> Any:
        return await run_in_pool(endpoint, *args, **kwargs)

    return call


class OneHopRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        plain = not (
            inspect.iscoroutinefunction(endpoint)
            or inspect.isgeneratorfunction(endpoint)
            or inspect.isasyncgenfunction(endpoint)
        )
        super().__init__(path, in_thread_pool(endpoint) if plain else endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # FastAPI builds the handler of an included route from the inclusion's own copy of the
        # route (the router's prefix and dependencies merged in), found through this context
        # variable; without it (a FastAPI that no longer has it) the route's own is used.
        context_var = getattr(fastapi_routing, "_effective_route_context_var", None)
        context = context_var.get() if context_var is not None else None
        owner: Any = context if context is not None and context.original_route is self else self
        declared: Dependant = owner.dependant
        as_declared = super().get_route_handler()
        # Solved by a plan made now (api/solver.py), not by FastAPI's walk of the tree each time.
        owner.dependant = solver.planned(at_runtime(declared))
        try:
            lean = super().get_route_handler()
        finally:
            # The OpenAPI document is generated from the declared dependencies.
            owner.dependant = declared
        provider = owner.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            # Overrides name the declared dependencies (tests, benches): with any set, FastAPI's
            # own resolution of the declared ones, so they apply.
            if provider is not None and getattr(provider, "dependency_overrides", None):
                return await as_declared(request)
            return await lean(request)

        return handler


def at_runtime(dependant: Dependant) -> Dependant:
    """A copy of `dependant` with every dependency that has a runtime equivalent replaced by it."""
    dependencies = []
    for sub in dependant.dependencies:
        equivalent = RUNTIME_EQUIVALENTS.get(sub.call) if sub.call is not None else None
        if equivalent is None:
            dependencies.append(at_runtime(sub))
        else:
            dependencies.append(
                get_dependant(
                    path=sub.path or "", call=equivalent, name=sub.name, use_cache=sub.use_cache, scope=sub.scope
                )
            )
    return dataclasses.replace(dependant, dependencies=dependencies)
