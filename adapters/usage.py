"""Resource usage: the collector thread and the usage read models of one process.

The collector runs only in the process that leads the process manager (the same lock), in a
thread of its own, every `usage_interval_seconds`: one `sample_usage()` of the vCenter driver,
then one write of the metrics read model. A failure is logged and kept for /healthz; the next
cycle tries again (an observation missed is not an event lost).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from domain.metrics import UsageSample
from domain.ports import Clock, VCenterDriver
from projections.metrics import Metrics, Retention
from projections.store import ReadStore
from projections.usage import Allocations

log = logging.getLogger("stagekeeper.usage")


@dataclass(frozen=True)
class Cycle:
    """What one collector cycle did: VMs kept, vCenter calls and seconds spent sampling."""

    vms: int
    calls: int
    sample_seconds: float


class UsageCollector:
    def __init__(
        self,
        driver: VCenterDriver,
        metrics: Metrics,
        store: ReadStore,
        clock: Clock,
        interval: float,
        may_act: Callable[[], bool],
    ) -> None:
        self.driver = driver
        self.metrics = metrics
        self.store = store
        self.clock = clock
        self.interval = interval
        self.may_act = may_act
        self.errors: dict[str, str] = {}
        self.last: Cycle | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sk-usage-collector", daemon=True)

    def owners(self) -> dict[str, tuple[str, str]]:
        """Deployment id -> (service id, stage) of every deployment not undeployed."""
        rows = self.store.query("SELECT id, service_id, stage FROM sk_deployments WHERE state <> %s", ("undeployed",))
        return {str(r["id"]): (str(r["service_id"]), str(r["stage"])) for r in rows}

    def collect_once(self) -> Cycle:
        started = time.perf_counter()
        sample: UsageSample = self.driver.sample_usage()
        spent = time.perf_counter() - started
        kept = self.metrics.record(sample, self.owners(), self.clock.now())
        self.last = Cycle(kept, sample.calls, spent)
        return self.last

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.may_act():
                continue
            try:
                self.collect_once()
                self.errors.pop("usage-collector", None)
            except Exception as error:
                self.errors["usage-collector"] = f"{type(error).__name__}: {error}"
                log.exception("usage collector cycle failed; next cycle in %.0fs", self.interval)


class Usage:
    """The usage read models (allocations from events, metrics from the collector) and the collector."""

    def __init__(
        self,
        driver: VCenterDriver,
        store: ReadStore,
        clock: Clock,
        interval: float,
        retention: Retention,
        may_act: Callable[[], bool],
    ) -> None:
        self.clock = clock
        self.allocations = Allocations(store)
        self.metrics = Metrics(store, retention)
        self.metrics.install()
        self.collector = UsageCollector(driver, self.metrics, store, clock, interval, may_act)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self.collector.start()
            self._started = True

    def stop(self) -> None:
        self.collector.stop()
