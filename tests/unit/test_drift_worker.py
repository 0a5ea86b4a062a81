"""The drift worker's schedule by the Clock port: a cycle when due and only on the leader; the
verification re-checks on their own cadence; a failed cycle is kept for /healthz, not raised."""

from __future__ import annotations

from typing import Any

from adapters.drift_worker import DriftWorker
from adapters.workers import Leadership
from tests.support import FixedClock


class Check:
    def __init__(self) -> None:
        self.cycles = 0
        self.fail = False

    def run_cycle(self) -> None:
        self.cycles += 1
        if self.fail:
            raise RuntimeError("vCenter unreachable")


def worker(leads: bool) -> tuple[DriftWorker, Check, FixedClock, list[int]]:
    check, clock, verified = Check(), FixedClock(), []
    leadership = Leadership(acquire=lambda: leads, holds=lambda: leads)
    leadership.try_lead()
    made = DriftWorker(check, leadership, clock, 300, verify=lambda: verified.append(1))  # type: ignore[arg-type]
    return made, check, clock, verified


def test_a_cycle_runs_at_once_then_every_interval_by_the_clock() -> None:
    made, check, clock, _ = worker(leads=True)
    assert made.tick() is True
    clock.advance(seconds=299)
    assert made.tick() is False
    clock.advance(seconds=1)
    assert made.tick() is True
    assert check.cycles == 2


def test_a_process_that_does_not_lead_compares_nothing() -> None:
    made, check, _, verified = worker(leads=False)
    assert made.tick() is False
    assert (check.cycles, verified) == (0, [])


def test_verifications_are_checked_again_every_few_seconds() -> None:
    made, _, clock, verified = worker(leads=True)
    made.tick()
    made.tick()
    clock.advance(seconds=5)
    made.tick()
    assert verified == [1, 1]


def test_a_failed_cycle_is_kept_for_health_and_the_next_one_runs_on_time(caplog: Any) -> None:
    made, check, clock, _ = worker(leads=True)
    check.fail = True
    assert made.tick() is True
    assert made.error == "RuntimeError: vCenter unreachable"
    check.fail = False
    clock.advance(seconds=300)
    made.tick()
    assert made.error is None
