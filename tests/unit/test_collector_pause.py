"""The cycle collector's pause while a deploy's machines are built (adapters/collector.py)."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator

import pytest

from adapters import collector


@pytest.fixture(autouse=True)
def collecting() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_collection_is_paused_while_held_and_resumes_after_the_last_holder() -> None:
    with collector.paused():
        assert not gc.isenabled()
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # one holder is left
    assert gc.isenabled()


def test_holders_in_other_threads_count_too() -> None:
    entered, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with collector.paused():
            entered.set()
            leave.wait(5)

    other = threading.Thread(target=hold)
    other.start()
    assert entered.wait(5)
    with collector.paused():
        pass
    assert not gc.isenabled()  # the other thread still holds it
    leave.set()
    other.join(5)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector.paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_the_pause_ends_at_its_limit_though_held() -> None:
    with collector.paused(limit=0.05):
        deadline = time.monotonic() + 5
        while not gc.isenabled() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gc.isenabled()
    assert gc.isenabled()
    with collector.paused():  # a later pause starts afresh
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_still_resumes_collection() -> None:
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("vCenter went away")
    assert gc.isenabled()
