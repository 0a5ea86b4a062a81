"""The drift check's own thread: on the process manager's leader only, every
`drift_interval_seconds` by the Clock port (tests move a fake clock instead of waiting).

A failed cycle (vCenter unreachable, the database down) is logged and kept for /healthz; the
next cycle runs at its usual time. A process that does not lead compares nothing.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from adapters.workers import Leadership, LeadershipLostError
from domain.ports import Clock
from domain.processes.drift import DriftCheck

log = logging.getLogger("stagekeeper.drift")
TICK_SECONDS = 1.0  # how often the thread looks at the clock


class DriftWorker:
    def __init__(self, check: DriftCheck, leadership: Leadership, clock: Clock, interval_seconds: float) -> None:
        self.check = check
        self.leadership = leadership
        self.clock = clock
        self.interval = timedelta(seconds=interval_seconds)
        self.error: str | None = None
        self._due: datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sk-drift", daemon=True)

    def start(self) -> None:
        if self.interval.total_seconds() > 0:
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def tick(self) -> bool:
        """Run a cycle if this process leads and one is due; say whether it ran."""
        now = self.clock.now()
        if self._due is None:
            self._due = now  # the first cycle runs as soon as this process leads
        if now < self._due or not self.leadership.leader:
            return False
        try:
            self.leadership.verify()
            self.check.run_cycle()
            self.error = None
        except LeadershipLostError:
            return False
        except Exception as error:
            self.error = f"{type(error).__name__}: {error}"
            log.exception("drift check failed; the next one runs in %s", self.interval)
        self._due = now + self.interval
        return True

    def _run(self) -> None:
        while not self._stop.wait(min(TICK_SECONDS, self.interval.total_seconds())):
            self.tick()
