"""The drift check's own thread: on the process manager's leader only, every
`drift_interval_seconds` by the Clock port (tests move a fake clock instead of waiting). The same
thread re-runs running verifications every VERIFY_SECONDS (domain/processes/verification.py), so
the process manager never waits out a verification's deadline.

A failed cycle (vCenter unreachable, the database down) is logged and kept for /healthz; the
next cycle runs at its usual time. A process that does not lead compares nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from adapters.workers import Leadership, LeadershipLostError
from domain.ports import Clock
from domain.processes.drift import DriftCheck

log = logging.getLogger("stagekeeper.drift")
TICK_SECONDS = 1.0  # how often the thread looks at the clock
VERIFY_SECONDS = 5.0  # how often running verifications are checked again


class DriftWorker:
    def __init__(
        self,
        check: DriftCheck,
        leadership: Leadership,
        clock: Clock,
        interval_seconds: float,
        verify: Callable[[], None] = lambda: None,
    ) -> None:
        self.check = check
        self.verify = verify
        self._verify_due: datetime | None = None
        self.leadership = leadership
        self.clock = clock
        self.interval = timedelta(seconds=interval_seconds)
        self.error: str | None = None
        self._due: datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sk-drift", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def tick(self) -> bool:
        """Re-run running verifications when due, and a drift cycle if this process leads and one
        is due; say whether the drift cycle ran."""
        if not self.leadership.leader:
            return False
        self._verifications(self.clock.now())
        if self.interval.total_seconds() <= 0:
            return False
        return self._drift(self.clock.now())

    def _verifications(self, now: datetime) -> None:
        if self._verify_due is not None and now < self._verify_due:
            return
        try:
            self.leadership.verify()
            self.verify()
        except LeadershipLostError:
            return
        except Exception:
            log.exception("verification re-checks failed; trying again in %ss", VERIFY_SECONDS)
        self._verify_due = now + timedelta(seconds=VERIFY_SECONDS)

    def _drift(self, now: datetime) -> bool:
        if self._due is None:
            self._due = now  # the first cycle runs as soon as this process leads
        if now < self._due:
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
        while not self._stop.wait(TICK_SECONDS):
            self.tick()
