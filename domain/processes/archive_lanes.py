"""Two bounded lanes for an archive's or a restore's vCenter work, driven from the calling thread.

`task` runs vCenter tasks and calls (copies, registrations, power, records), `read` runs reads
through vCenter's HTTP file access (SHA-256 digests); each lane runs at most `parallel` at once, so
a file's check on the tier overlaps the next file's copy without exceeding the bound of either. A
step's continuation (`then`) runs in the thread that calls `run`. `record` runs a write of events
in the one recording thread: the callers keep at most one write in flight (the steps finished
meanwhile go into the next one), so the event order and the aggregate's version stay
single-threaded, and the calling thread goes on starting the next steps while a write is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

Then = Callable[["Future[Any]"], None]


class Lanes:
    def __init__(self, parallel: int) -> None:
        self._tasks = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="sk-archive-task")
        self._reads = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="sk-archive-read")
        self._records = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sk-archive-record")
        self._then: dict[Future[Any], Then] = {}

    def task(self, work: Callable[[], Any], then: Then) -> None:
        self._then[self._tasks.submit(work)] = then

    def read(self, work: Callable[[], Any], then: Then) -> None:
        self._then[self._reads.submit(work)] = then

    def record(self, work: Callable[[], Any], then: Then) -> None:
        self._then[self._records.submit(work)] = then

    def busy(self) -> bool:
        """Steps are under way (or finished, their continuations not run yet)."""
        return bool(self._then)

    def run(self, after: Callable[[], None] = lambda: None) -> None:
        """Until nothing is pending: each finished step's continuation, in this thread, then `after`
        once per batch of them (the next steps are already submitted when `after` records events).
        An exception a continuation raises stops the run; `close` then waits for the running steps."""
        while self._then:
            done, _ = wait(list(self._then), return_when=FIRST_COMPLETED)
            for future in done:
                self._then.pop(future)(future)
            after()

    def close(self) -> None:
        self._then.clear()
        self._tasks.shutdown(wait=True, cancel_futures=True)
        self._reads.shutdown(wait=True, cancel_futures=True)
        self._records.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Lanes:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
