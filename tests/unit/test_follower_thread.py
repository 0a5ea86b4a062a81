"""A follower thread's debounce: short for a lone event, longer under a stream, skipped for a reader."""

from __future__ import annotations

import threading
import time

from adapters.workers import DEBOUNCE_EVENTS, FollowerThread


class Counting:
    name = "counting"

    def __init__(self) -> None:
        self.pending = 0
        self.passes: list[float] = []
        self.lock = threading.Lock()

    def position(self) -> int:
        return 0

    def catch_up(self, until: int | None = None) -> int:
        with self.lock:
            done, self.pending = self.pending, 0
        self.passes.append(time.monotonic())
        return done


def test_the_delay_grows_with_the_pass_before_up_to_the_bound() -> None:
    thread = FollowerThread("t", [], 1.0, debounce=0.005, max_debounce=0.025)
    assert thread.delay(0) == thread.delay(1) == 0.005
    assert thread.delay(DEBOUNCE_EVENTS * 3) == 0.015
    assert thread.delay(1000) == 0.025
    # Without a bound above the base (the default), the debounce stays as it was.
    fixed = FollowerThread("f", [], 1.0, debounce=0.005)
    assert fixed.delay(1000) == 0.005


def test_a_reader_in_a_hurry_skips_the_debounce() -> None:
    follower = Counting()
    # A long debounce, as after a busy pass: a plain wake waits it out, a hurry does not.
    thread = FollowerThread("t", [follower], 60.0, debounce=2.0, max_debounce=2.0)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not follower.passes:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        thread.wake()
        time.sleep(0.2)
        assert len(follower.passes) == 1  # still in the debounce
        started = time.monotonic()
        thread.hurry()
        while len(follower.passes) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert follower.passes[1] - started < 1.0
    finally:
        thread.stop()


def test_every_wake_is_followed_by_a_pass() -> None:
    follower = Counting()
    thread = FollowerThread("t", [follower], 60.0, debounce=0.001, max_debounce=0.01)
    thread.start()
    try:
        for _ in range(20):
            with follower.lock:
                follower.pending += 5
            thread.wake()
            time.sleep(0.002)
        deadline = time.monotonic() + 5
        while follower.pending:
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        thread.stop()
