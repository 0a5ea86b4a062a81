"""One shared watcher of the event store's head, which live streams wait on without a thread.

Writes made in this process are announced at once (`notify`, from the application's on_saved);
writes of other processes are found by polling the head, in ONE place: a single task that reads
the head in a worker thread once per poll, whatever the number of waiting clients.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import anyio.to_thread

log = logging.getLogger("stagekeeper.notify")


class Notifier:
    """One shared watcher of the event store's head; async waiters cost no thread."""

    def __init__(self, head: Callable[[], int], poll_seconds: float) -> None:
        self._head = head
        self._poll_seconds = poll_seconds
        self._position = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        # Replaced by a fresh event each time the head moves: every waiter of the old one wakes.
        self._moved = asyncio.Event()

    async def start(self) -> None:
        """Begin watching (app lifespan)."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._moved = asyncio.Event()
        self._task = asyncio.create_task(self._watch(), name="stagekeeper-notifier")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._loop = None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise

    @property
    def position(self) -> int:
        """Last head seen."""
        return self._position

    async def wait(self, after: int, timeout: float) -> int:
        """Return as soon as the head is past `after`, or the head seen when `timeout` runs out."""
        deadline = time.monotonic() + timeout
        while self._position <= after:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self._task is None:
                # Not started (an app used without its lifespan): look at the head ourselves.
                self._advance(await anyio.to_thread.run_sync(self._head))
                if self._position <= after:
                    await asyncio.sleep(min(self._poll_seconds, max(0.0, deadline - time.monotonic())))
                continue
            moved = self._moved
            try:
                await asyncio.wait_for(moved.wait(), remaining)
            except TimeoutError:
                break
        return self._position

    def notify(self, position: int) -> None:
        """Thread-safe; called from app.on_saved in-process."""
        loop = self._loop
        if loop is None:
            self._position = max(self._position, position)
            return
        try:
            loop.call_soon_threadsafe(self._advance, position)
        except RuntimeError:
            # The loop closed while this save finished (shutdown): nobody is left waiting.
            self._position = max(self._position, position)

    def _advance(self, position: int) -> None:
        if position > self._position:
            self._position = position
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()

    async def _watch(self) -> None:
        while True:
            try:
                self._advance(await anyio.to_thread.run_sync(self._head))
            except Exception as error:
                # The store is unreachable (an outage): streams keep waiting, and the head is
                # read again next time; in-process writes still arrive through notify().
                log.warning("cannot read the event store's head: %s: %s", type(error).__name__, error)
            await asyncio.sleep(self._poll_seconds)
