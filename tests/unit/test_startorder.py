"""Start order: groups, waits, reverse order on power-off, and the validation of the setting."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import ValidationError
from domain.startorder import StartOrder, start_groups, start_in_order, stop_groups, stop_in_order
from domain.values import Machine


def spec(name: str, order: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "template": "tpl"}
    if order is not None:
        data["start_order"] = order
    return Machine.parse(data).to_dict()


THREE_TIER = [
    spec("web", {"group": 2}),
    spec("app", {"group": 1, "delay_seconds": 30}),
    spec("db", {"group": 0, "wait_for": "tools", "delay_seconds": 120}),
]


def test_groups_start_databases_first_and_stop_them_last() -> None:
    assert [g.machines for g in start_groups(THREE_TIER)] == [("db",), ("app",), ("web",)]
    assert [g.machines for g in stop_groups(THREE_TIER)] == [("web",), ("app",), ("db",)]


def test_each_group_waits_as_it_says_before_the_next_starts() -> None:
    log: list[str] = []

    def tools(machine: str, timeout: float) -> bool:
        log.append(f"tools {machine} {timeout:g}")
        return True

    result = start_in_order(
        start_groups(THREE_TIER),
        start=lambda machines: log.append("start " + ",".join(machines)),
        tools_running=tools,
        sleep=lambda seconds: log.append(f"sleep {seconds:g}"),
    )
    assert log == ["start db", "tools db 120", "start app", "sleep 30", "start web"]
    assert [r.tools_late for r in result] == [(), (), ()]


def test_tools_that_never_answer_are_reported_and_the_next_group_still_starts() -> None:
    started: list[tuple[str, ...]] = []
    result = start_in_order(start_groups(THREE_TIER), started.append, lambda m, t: False, lambda s: None)
    assert started == [("db",), ("app",), ("web",)]
    assert result[0].tools_late == ("db",)


def test_a_group_already_started_before_a_restart_does_not_wait_again() -> None:
    slept: list[float] = []
    started: list[tuple[str, ...]] = []
    start_in_order(
        start_groups(THREE_TIER), started.append, lambda m, t: True, slept.append, wants=lambda m: m == "web"
    )
    assert started == [("web",)]
    assert slept == []


def test_machines_without_start_order_start_together_in_group_zero() -> None:
    groups = start_groups([spec("a"), spec("b"), spec("c", {"group": 3})])
    assert [(g.number, g.machines, g.waits) for g in groups] == [(0, ("a", "b"), False), (3, ("c",), False)]


def test_power_off_stops_in_reverse_without_waiting() -> None:
    stopped: list[tuple[str, ...]] = []
    stop_in_order(stop_groups(THREE_TIER), stopped.append, wants=lambda m: m != "app")
    assert stopped == [("web",), ("db",)]


def test_tools_wait_defaults_to_a_bounded_timeout() -> None:
    assert StartOrder.parse({"wait_for": "tools"}, "s").delay_seconds == 300


@pytest.mark.parametrize(
    ("order", "field"),
    [
        ({"group": -1}, "machine.start_order.group"),
        ({"group": 100}, "machine.start_order.group"),
        ({"group": True}, "machine.start_order.group"),
        ({"delay_seconds": 3601}, "machine.start_order.delay_seconds"),
        ({"wait_for": "ping"}, "machine.start_order.wait_for"),
        ({"colour": 1}, "machine.start_order.colour"),
        ("first", "machine.start_order"),
    ],
)
def test_bad_start_orders_are_refused_naming_the_field(order: object, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Machine.parse({"name": "m", "template": "tpl", "start_order": order})
    assert refused.value.field == field


def test_machines_without_start_order_keep_their_stored_shape() -> None:
    assert "start_order" not in spec("a")
    assert spec("a", {"group": 1})["start_order"] == {"group": 1, "delay_seconds": 0, "wait_for": "delay"}
