"""Screenshots of machine consoles, shared between the people viewing them.

Every open deployment page refreshes each machine's screenshot every few seconds; with several
people watching the same consoles, vCenter would be asked for the same picture again and again.
A picture younger than `SCREENSHOT_SECONDS` is served to everyone, and only one request per VM
goes to vCenter at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

SCREENSHOT_SECONDS = 4.0


class ScreenshotCache:
    def __init__(self, seconds: float = SCREENSHOT_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._pictures: dict[str, tuple[float, bytes]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: str, take: Callable[[], bytes]) -> bytes:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # viewers of one VM wait for the one picture being taken
            kept = self._pictures.get(key)
            if kept is not None and kept[0] > self._clock():
                return kept[1]
            picture = take()
            with self._guard:
                if len(self._pictures) > 1000:
                    self._pictures.clear()
                self._pictures[key] = (self._clock() + self.seconds, picture)
            return picture
