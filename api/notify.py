"""One shared watcher of the event store's head, which live streams wait on without a thread.

Writes made in this process are announced at once (`notify`, from the application's commit
listeners) with the aggregates they touched, so a stream following one aggregate wakes only for
writes to it (`watch(id)`). Writes of other processes are found by polling the head, in ONE
place: a single task that reads the head in a worker thread once per poll, whatever the number
of waiting clients. Which aggregates such a write touched is not known here, so it wakes every
watch, once per poll at most.

Telling the two apart: every position this process wrote is remembered until judged. A poll
judges the positions up to the head seen at the PREVIOUS poll, so that a save of this process
that the head already shows but whose announcement is still on its way (it is made right after
the save returns, from another thread) is not taken for another process's write. Another
process's write therefore reaches watches within two polls; the board's `wait` sees it at the
first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from uuid import UUID

import anyio.to_thread

from api.routing import call_on_loop

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
        # Per watched aggregate: how many watch it, the last position that may have changed it,
        # and the event its waiters sleep on (replaced, like `_moved`, each time it fires).
        self._watchers: Counter[UUID] = Counter()
        self._marks: dict[UUID, int] = {}
        self._changed: dict[UUID, asyncio.Event] = {}
        # The last position at which a write of unknown aggregates (another process) was seen.
        self._unknown = 0
        # Positions up to `_judged` are accounted for; `_own` holds this process's positions past
        # it, and `_pending` the head read at the last poll (judged at the next one).
        self._judged = 0
        self._own: set[int] = set()
        self._pending = 0

    async def start(self) -> None:
        """Begin watching (app lifespan)."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._moved = asyncio.Event()
        self._changed = {}
        try:
            # What is stored before start is nobody's news: only later writes are judged.
            head = await anyio.to_thread.run_sync(self._head)
        except Exception as error:
            # Unreachable store: the first poll that reads the head wakes every watch once.
            log.warning("cannot read the event store's head: %s: %s", type(error).__name__, error)
        else:
            self._advance(head)
            self._judged = self._pending = max(self._judged, head)
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

    @contextmanager
    def watch(self, originator_id: UUID) -> Iterator[None]:
        """Follow one aggregate while the block runs (call on the event loop). Enter it before the
        first read of the aggregate: a write landing during that read then shows in `mark`."""
        self._watchers[originator_id] += 1
        try:
            yield
        finally:
            self._watchers[originator_id] -= 1
            if self._watchers[originator_id] <= 0:
                del self._watchers[originator_id]
                self._marks.pop(originator_id, None)
                self._changed.pop(originator_id, None)

    def mark(self, originator_id: UUID) -> int:
        """The last position that may have changed a watched aggregate (compare with wait_for).
        Without the lifespan, nothing tells aggregates apart: it is the head."""
        if self._task is None:
            return self._position
        return max(self._marks.get(originator_id, 0), self._unknown)

    async def wait_for(self, originator_id: UUID, after: int, timeout: float) -> int:
        """Return as soon as `mark(originator_id)` is past `after` (a write to that aggregate, or
        one of another process), or the mark when `timeout` runs out. The aggregate must be
        watched (`watch`) from before `after` was taken."""
        if self._task is None:
            return await self.wait(after, timeout)
        deadline = time.monotonic() + timeout
        while self.mark(originator_id) <= after:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            changed = self._changed.setdefault(originator_id, asyncio.Event())
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                break
        return self.mark(originator_id)

    def notify(self, position: int, originator_ids: Collection[UUID] = (), positions: Collection[int] = ()) -> None:
        """Thread-safe; called after each save of this process with the aggregates it wrote and
        the positions it wrote them at (`position` is the last of them)."""
        loop = self._loop
        if loop is None:
            self._position = max(self._position, position)
            return
        try:
            # From a request's pool thread, sent with its answer: one wake-up of the loop (api/routing.py).
            call_on_loop(loop, self._saved, position, tuple(originator_ids), tuple(positions))
        except RuntimeError:
            # The loop closed while this save finished (shutdown): nobody is left waiting.
            self._position = max(self._position, position)

    def _saved(self, position: int, originator_ids: tuple[UUID, ...], positions: tuple[int, ...]) -> None:
        self._own.update(p for p in positions if p > self._judged)
        for originator_id in originator_ids:
            if originator_id in self._watchers:
                self._marks[originator_id] = max(self._marks.get(originator_id, 0), position)
                self._fire(originator_id)
        self._advance(position)

    def _fire(self, originator_id: UUID) -> None:
        changed = self._changed.pop(originator_id, None)
        if changed is not None:
            changed.set()

    def _advance(self, position: int) -> None:
        if position > self._position:
            self._position = position
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()

    def _polled(self, head: int) -> None:
        self._advance(head)
        judge, self._pending = self._pending, max(self._pending, head)
        if judge <= self._judged:
            return
        ours = sum(1 for p in self._own if self._judged < p <= judge)
        foreign = judge - self._judged > ours
        self._own = {p for p in self._own if p > judge}
        self._judged = judge
        if foreign:
            # Another process wrote (or a failed insert left a gap): any watch may be concerned.
            self._unknown = judge
            for originator_id in list(self._changed):
                self._fire(originator_id)

    async def _watch(self) -> None:
        while True:
            try:
                self._polled(await anyio.to_thread.run_sync(self._head))
            except Exception as error:
                # The store is unreachable (an outage): streams keep waiting, and the head is
                # read again next time; in-process writes still arrive through notify().
                log.warning("cannot read the event store's head: %s: %s", type(error).__name__, error)
            await asyncio.sleep(self._poll_seconds)
