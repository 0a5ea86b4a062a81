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

The hop itself is `run_in_pool`: a call queued to a bounded pool of threads of its own, whose
answer comes back to the event loop with one `call_soon_threadsafe`, without anyio's per-call
capacity limiter and cancel scopes (starlette's `run_in_threadpool`) nor the executor's
futures chained to the loop's and shielded (`run_in_executor`, `asyncio.shield`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import dataclasses
import functools
import inspect
import logging
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from api import solver
from api.deps import RUNTIME_EQUIVALENTS
from api.direct import direct_handler

solver.install()
log = logging.getLogger("stagekeeper.api")

P = ParamSpec("P")
T = TypeVar("T")

# As many threads as anyio's default limiter lets starlette's `run_in_threadpool` use.
POOL_THREADS = 40
_pool: ThreadPool | None = None
_pool_lock = threading.Lock()


class ThreadPool:
    """Up to `max_threads` threads taking calls from one queue, started as calls need them.

    What `ThreadPoolExecutor` does for the hop, without what the hop does not use (a
    `concurrent.futures.Future` with its condition per call, a semaphore probed per call): each
    call claims a waiting thread, or starts one while fewer than `max_threads` run, or waits in
    the queue for the next thread that finishes one. The threads are daemons; at exit they are
    stopped, and each one's running call finished, before the interpreter goes (as the executor's
    are)."""

    def __init__(self, max_threads: int, name: str) -> None:
        self.max_threads = max_threads
        self._name = name
        self._calls: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # Threads waiting for a call that no call has claimed yet; calls waiting for a thread.
        self._idle = 0
        self._backlog = 0
        atexit.register(self.close)

    def submit(self, call: Callable[[], object]) -> None:
        with self._lock:
            self._calls.put(call)
            if self._idle > 0:
                self._idle -= 1
                return
            if len(self._threads) >= self.max_threads:
                self._backlog += 1
                return
            thread = threading.Thread(target=self._run, name=f"{self._name}_{len(self._threads)}", daemon=True)
            self._threads.append(thread)
        thread.start()

    def _run(self) -> None:
        calls = self._calls
        while True:
            call = calls.get()
            if call is None:
                return
            try:
                call()
            except BaseException:  # a call hands its own errors over (run_in_pool): this is a bug
                log.exception("a call in the API's thread pool failed")
            del call
            with self._lock:
                if self._backlog > 0:
                    self._backlog -= 1
                else:
                    self._idle += 1

    def close(self) -> None:
        """Stop every thread once its running call (and any queued before) is done."""
        with self._lock:
            threads, self._threads = self._threads, []
            for _ in threads:
                self._calls.put(None)
            self._idle = self._backlog = 0
        for thread in threads:
            thread.join()


def thread_pool() -> ThreadPool:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPool(POOL_THREADS, "stagekeeper-api")
    return _pool


class _Call(asyncio.Future[Any]):
    """The future of a call running in the pool: it cannot be cancelled, so a task cancelled
    while awaiting it gets its `CancelledError` once the call has finished (asyncio delivers a
    cancellation the awaited future refuses at the task's next step), as anyio's hop does."""

    def cancel(self, msg: Any | None = None) -> bool:
        return False


async def run_in_pool(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` in the API's thread pool, in a copy of the caller's context
    (the request id, the pending request: context variables), as `run_in_threadpool` does.
    Cancelled while it runs, it waits for the call to finish before it lets the cancellation
    through, as anyio does: a command is never abandoned half way by its request."""
    loop = asyncio.get_running_loop()
    future = _Call(loop=loop)
    context = contextvars.copy_context()

    def call() -> None:
        held = _Held(loop)
        _serving.held = held
        try:
            result = context.run(function, *args, **kwargs)
        except BaseException as error:  # handed to the awaiting task, as the executor's future does
            _serving.held = None
            _settle(loop, held.deliver, future.set_exception, error)
        else:
            _serving.held = None
            _settle(loop, held.deliver, future.set_result, result)

    thread_pool().submit(call)
    result: T = await future
    return result


class _Held:
    """The one loop call (`call_on_loop`) a pool call holds back to send with its answer."""

    __slots__ = ("callback", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.callback: tuple[Callable[..., object], tuple[Any, ...]] | None = None

    def deliver(self, setter: Callable[[Any], None], value: Any) -> None:
        """On the loop: the held call first (it was made first), then the answer."""
        held, self.callback = self.callback, None
        if held is not None:
            try:
                held[0](*held[1])
            except Exception:  # as the loop does with a failing callback: logged, the rest goes on
                log.exception("a call held for the event loop failed")
        setter(value)


# The pool call this thread runs, if any (its `_Held`).
_serving = threading.local()


def call_on_loop(loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: Any) -> None:
    """`loop.call_soon_threadsafe(callback, *args)`, except from a call the API's pool runs for that
    loop: there the callback is held and sent with the call's answer, in the same wake-up of the
    loop. A command's commit announces itself to the live streams (api/notify.py) just before its
    answer is ready: two wake-ups of the event loop (each a wait for the interpreter lock while the
    pool thread finishes the request) become one. Only the last such callback is held: one made
    while another is held sends that one at once, so none waits for more than the rest of its call.
    Raises RuntimeError if the loop is closed (as `call_soon_threadsafe` does)."""
    held: _Held | None = getattr(_serving, "held", None)
    if held is None or held.loop is not loop:
        loop.call_soon_threadsafe(callback, *args)
        return
    earlier, held.callback = held.callback, (callback, args)
    if earlier is not None:
        loop.call_soon_threadsafe(earlier[0], *earlier[1])


def _settle(
    loop: asyncio.AbstractEventLoop,
    deliver: Callable[[Callable[[Any], None], Any], None],
    setter: Callable[[Any], None],
    value: Any,
) -> None:
    # The loop may have closed meanwhile (shutdown): nobody awaits the answer any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(deliver, setter, value)


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
        runtime_dependant = solver.planned(at_runtime(declared))
        owner.dependant = runtime_dependant
        try:
            lean = super().get_route_handler()
        finally:
            # The OpenAPI document is generated from the declared dependencies.
            owner.dependant = declared
        # FastAPI's handler less what a planned JSON route does not use (api/direct.py).
        lean = direct_handler(owner, runtime_dependant, lean) or lean
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
