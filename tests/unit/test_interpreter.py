"""adapters/interpreter.py: what `serve` and `worker` set before serving."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from adapters.interpreter import settle
from adapters.settings import Settings, SettingsError


@pytest.fixture
def restored() -> Iterator[None]:
    interval = sys.getswitchinterval()
    yield
    gc.unfreeze()
    sys.setswitchinterval(interval)


def test_settle_sets_the_switch_interval_and_freezes_what_start_up_built(restored: None) -> None:
    built_at_start_up = [object() for _ in range(10)]
    settle(Settings(switch_interval_ms=2.5))
    assert sys.getswitchinterval() == pytest.approx(0.0025)
    assert gc.get_freeze_count() >= len(built_at_start_up)


def test_the_default_interval_is_pythons() -> None:
    assert Settings().switch_interval_ms == 5.0


@pytest.mark.parametrize("value", ["0", "0.05", "101", "fast"])
def test_an_interval_out_of_bounds_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^STAGEKEEPER_SWITCH_INTERVAL_MS: "):
        Settings.from_env({"STAGEKEEPER_SWITCH_INTERVAL_MS": value})
