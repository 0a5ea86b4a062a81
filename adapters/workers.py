"""Background threads that keep followers caught up: projections, and the process manager.

Two threads, so a long vCenter job never delays the read models. The process manager only
runs in the process holding its lock (PostgreSQL advisory lock / SQLite file lock); other
processes stand by and take over when the holder dies. A follower error is logged with its
traceback, kept for /healthz, and the follower retries with backoff: the event is not skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from domain.errors import UnavailableError
from projections.follower import Follower

log = logging.getLogger("stagekeeper.workers")


class FollowerThread:
    def __init__(
        self,
        name: str,
        followers: Sequence[Follower],
        interval: float,
        acquire: Callable[[], bool] = lambda: True,
        debounce: float = 0.0,
    ) -> None:
        self.debounce = debounce
        self.name = name
        self.followers = list(followers)
        self.interval = interval
        self._acquire = acquire
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sk-{name}", daemon=True)
        self.leader = False
        self.errors: dict[str, str] = {}

    def start(self) -> None:
        self._thread.start()

    def wake(self, *_: object) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            failed = False
            if not self.leader:
                try:
                    self.leader = self._acquire()
                    self.errors.pop("leadership", None)
                except UnavailableError as error:
                    # The database is down: stay a follower and ask again later (the thread lives on).
                    failed = True
                    self.errors["leadership"] = error.message
                    log.warning("%s: cannot ask for leadership: %s", self.name, error.message)
            if self.leader:
                for follower in self.followers:
                    if self._stop.is_set():
                        return
                    try:
                        follower.catch_up()
                        self.errors.pop(follower.name, None)
                    except Exception as error:
                        failed = True
                        self.errors[follower.name] = f"{type(error).__name__}: {error}"
                        log.exception("follower %s failed; retrying in %.1fs", follower.name, backoff)
            if failed:
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = self.interval
            if self._wake.wait(self.interval) and self.debounce:
                time.sleep(self.debounce)
            self._wake.clear()
