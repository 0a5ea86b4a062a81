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


class LanePools:
    """The threads of the lanes. The archive process keeps one between its runs: starting a lane's
    threads again for every archive and restore costs more than it seems on a loaded machine (each
    start waits for the new thread to be scheduled, while the next copies wait to be submitted)."""

    def __init__(self, parallel: int) -> None:
        self.parallel = max(1, parallel)
        self.tasks = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="sk-archive-task")
        self.reads = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="sk-archive-read")
        self.records = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sk-archive-record")

    def close(self, wait: bool = True) -> None:
        for pool in (self.tasks, self.reads, self.records):
            pool.shutdown(wait=wait, cancel_futures=True)


class Lanes:
    """One run's steps on the lanes: its own pools (`parallel` a number, shut down after the run) or
    the process's (a LanePools, kept)."""

    def __init__(self, parallel: int | LanePools) -> None:
        self._own = not isinstance(parallel, LanePools)
        self._pools = parallel if isinstance(parallel, LanePools) else LanePools(parallel)
        self.parallel = self._pools.parallel
        self._then: dict[Future[Any], Then] = {}

    def task(self, work: Callable[[], Any], then: Then) -> None:
        self._then[self._pools.tasks.submit(work)] = then

    def read(self, work: Callable[[], Any], then: Then) -> None:
        self._then[self._pools.reads.submit(work)] = then

    def record(self, work: Callable[[], Any], then: Then) -> None:
        self._then[self._pools.records.submit(work)] = then

    def busy(self) -> bool:
        """Steps are under way (or finished, their continuations not run yet)."""
        return bool(self._then)

    def pending(self) -> int:
        """How many steps are under way (or finished, their continuations not run yet)."""
        return len(self._then)

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
        """Steps not started are cancelled; the running ones are waited for."""
        pending, self._then = list(self._then), {}
        if self._own:
            self._pools.close()
            return
        for future in pending:
            future.cancel()
        wait(pending)

    def __enter__(self) -> Lanes:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
