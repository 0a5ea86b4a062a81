"""The API's thread-pool hop (api/routing.py `run_in_pool`) and the event loop `serve` picks."""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import threading
import time
from collections.abc import Callable

import pytest

from api import cli
from api.routing import POOL_THREADS, ThreadPool, call_on_loop, run_in_pool, thread_pool

REQUEST: contextvars.ContextVar[str | None] = contextvars.ContextVar("test-request", default=None)


def test_runs_in_a_pool_thread_with_a_copy_of_the_callers_context() -> None:
    async def main() -> tuple[str | None, str, str | None]:
        REQUEST.set("r-1")

        def work(suffix: str) -> tuple[str | None, str]:
            seen = REQUEST.get()
            REQUEST.set("changed in the thread")
            return (None if seen is None else seen + suffix), threading.current_thread().name

        seen, thread = await run_in_pool(work, suffix="!")
        return seen, thread, REQUEST.get()

    seen, thread, after = asyncio.run(main())
    assert seen == "r-1!"
    assert thread.startswith("stagekeeper-api")
    assert after == "r-1"  # the thread's change stays in its copy


def test_an_exception_reaches_the_caller() -> None:
    def fail() -> None:
        raise LookupError("no such service")

    with pytest.raises(LookupError, match="no such service"):
        asyncio.run(run_in_pool(fail))


def test_a_cancelled_request_waits_for_its_call_to_finish() -> None:
    finished = threading.Event()

    def command() -> None:
        time.sleep(0.2)
        finished.set()

    async def main() -> bool:
        task = asyncio.ensure_future(run_in_pool(command))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return finished.is_set()

    assert asyncio.run(main()) is True


def test_a_loop_call_from_a_pool_call_comes_with_its_answer_and_first() -> None:
    """A pool call's `call_on_loop` is held and runs on the loop just before the answer is set: the
    pool thread wakes the loop once (one `call_soon_threadsafe`), not twice; from any other thread
    the call goes at once."""

    async def main() -> tuple[list[str], int]:
        loop = asyncio.get_running_loop()
        order: list[str] = []
        wakes = 0
        original = loop.call_soon_threadsafe

        def counted(*args: object, **kwargs: object) -> asyncio.Handle:
            nonlocal wakes
            wakes += 1
            return original(*args, **kwargs)  # type: ignore[arg-type]

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        turns = 0

        async def ticker() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        def command() -> str:
            call_on_loop(loop, lambda: order.append("held"))
            seen = turns
            time.sleep(0.05)
            assert turns > seen + 10  # the loop keeps turning while the call goes on ...
            assert order == []  # ... without the held call
            return "answer"

        tick = asyncio.ensure_future(ticker())
        answer = await run_in_pool(command)
        order.append(answer)
        tick.cancel()
        pool_wakes = wakes
        other = threading.Thread(target=call_on_loop, args=(loop, lambda: order.append("direct")))
        other.start()
        other.join()
        await asyncio.sleep(0.01)
        return order, pool_wakes

    order, pool_wakes = asyncio.run(main())
    assert order == ["held", "answer", "direct"]
    assert pool_wakes == 1


def test_only_the_last_loop_call_is_held_and_a_failing_one_does_not_lose_the_answer() -> None:
    async def main() -> tuple[list[str], object]:
        loop = asyncio.get_running_loop()
        order: list[str] = []
        first_ran = threading.Event()

        def fail() -> None:
            raise RuntimeError("a broken listener")

        def first() -> None:
            order.append("first")
            first_ran.set()

        def command() -> str:
            call_on_loop(loop, first)
            call_on_loop(loop, fail)  # the first is sent now, this one held
            assert first_ran.wait(5)
            return "answer"

        answer = await run_in_pool(command)
        return order, answer

    order, answer = asyncio.run(main())
    assert order == ["first"]
    assert answer == "answer"


def test_a_failed_call_still_sends_its_held_loop_call() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        order: list[str] = []

        def command() -> None:
            call_on_loop(loop, lambda: order.append("held"))
            raise LookupError("refused after the commit")

        with pytest.raises(LookupError):
            await run_in_pool(command)
        return order

    assert asyncio.run(main()) == ["held"]


def test_the_pool_is_bounded() -> None:
    assert thread_pool().max_threads == POOL_THREADS


def test_calls_past_the_bound_wait_for_a_thread_and_idle_threads_are_reused() -> None:
    pool = ThreadPool(3, "test-pool")
    release = threading.Event()
    done: list[int] = []
    lock = threading.Lock()

    def call(i: int) -> Callable[[], None]:
        def run() -> None:
            release.wait(5)
            with lock:
                done.append(i)

        return run

    try:
        for i in range(7):
            pool.submit(call(i))
        time.sleep(0.05)
        assert len(pool._threads) == 3  # never more than the bound
        assert done == []
        release.set()
        deadline = time.monotonic() + 5
        while len(done) < 7 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(done) == list(range(7))
        # Every thread is idle again: new calls are taken by them, none is started.
        for i in range(7, 10):
            pool.submit(call(i))
            deadline = time.monotonic() + 5
            while len(done) < i + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert sorted(done) == list(range(10))
        assert len(pool._threads) == 3
    finally:
        release.set()
        pool.close()


def test_serve_uses_uvloop_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.EVENT_LOOP, raising=False)
    assert cli._event_loop() == "uvloop"
    monkeypatch.setenv(cli.EVENT_LOOP, "asyncio")
    assert cli._event_loop() == "asyncio"


def test_serve_falls_back_to_asyncio_without_uvloop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(cli.EVENT_LOOP, raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a))
    with caplog.at_level("WARNING", logger="stagekeeper"):
        assert cli._event_loop() == "asyncio"
    assert "uvloop is not installed" in caplog.text
