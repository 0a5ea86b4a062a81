"""A notifier of new event positions, for streams that wait for "something changed".

Local saves call `notify(position)` (from any thread); events stored by other processes are
found by polling `head()` every `poll_seconds` while someone waits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


class Notifier:
    def __init__(self, head: Callable[[], int], poll_seconds: float) -> None:
        self._head = head
        self._poll = poll_seconds
        self._position = 0
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._stopped = False

    async def start(self) -> None:
        self._stopped = False
        self.notify(await asyncio.to_thread(self._head))

    async def stop(self) -> None:
        self._stopped = True
        self._wake_all()

    @property
    def position(self) -> int:
        return self._position

    def notify(self, position: int) -> None:
        """A position was stored (thread-safe)."""
        with self._lock:
            if position <= self._position:
                return
            self._position = position
        self._wake_all()

    def _wake_all(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, flag in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(flag.set)

    async def wait(self, after: int, timeout: float) -> int:
        """The newest position once it is past `after`, or the current one after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._position <= after and not self._stopped:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            flag = asyncio.Event()
            entry = (loop, flag)
            with self._lock:
                self._waiters.add(entry)
            try:
                await asyncio.wait_for(flag.wait(), min(self._poll, remaining))
            except TimeoutError:
                # Nobody here saved anything: another process may have.
                self.notify(await asyncio.to_thread(self._head))
            finally:
                with self._lock:
                    self._waiters.discard(entry)
        return self._position
