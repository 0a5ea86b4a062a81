"""Start order: which machines of a deployment start first, and what each group waits for.

A machine may carry `start_order: {"group": int, "delay_seconds": int, "wait_for": "delay"|"tools"}`.
Groups start in ascending number (databases in group 0, the application tier in 1, web in 2...);
every machine of a group is started, then the group waits before the next one starts:
- `"delay"`: `delay_seconds` (the longest of the group's machines);
- `"tools"`: until VMware Tools reports the guest running on each of the group's machines that asks
  for it, giving up after `delay_seconds` (then the next group starts anyway; the caller is told).
Machines without a start order belong to group 0 and wait for nothing. Power-off goes in the
reverse group order, without waits. Pure: the starting, the Tools probe and the sleeping are
passed in, so deploy, whole-deployment power, copy, restore and swap all share this one rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.errors import ValidationError

MAX_GROUP = 99
MAX_DELAY_SECONDS = 3600
WAIT_FOR = ("delay", "tools")
# A `tools` wait with no delay_seconds given still needs a bound.
DEFAULT_TOOLS_TIMEOUT = 300


@dataclass(frozen=True)
class StartOrder:
    group: int = 0
    delay_seconds: int = 0
    wait_for: str = "delay"

    @classmethod
    def parse(cls, data: object, field_name: str) -> StartOrder:
        if not isinstance(data, dict):
            raise ValidationError(
                f"{field_name} must be an object with group, delay_seconds, wait_for", field=field_name
            )
        unknown = sorted(set(data) - {"group", "delay_seconds", "wait_for"})
        if unknown:
            raise ValidationError(f"{field_name} has unknown field '{unknown[0]}'", field=f"{field_name}.{unknown[0]}")
        group = _int(data.get("group") or 0, f"{field_name}.group", MAX_GROUP)
        wait_for = data.get("wait_for") or "delay"
        if wait_for not in WAIT_FOR:
            raise ValidationError(
                f"{field_name}.wait_for must be one of {', '.join(WAIT_FOR)}", field=f"{field_name}.wait_for"
            )
        assert isinstance(wait_for, str)
        default_delay = DEFAULT_TOOLS_TIMEOUT if wait_for == "tools" else 0
        given = data.get("delay_seconds")
        delay = _int(default_delay if given is None else given, f"{field_name}.delay_seconds", MAX_DELAY_SECONDS)
        return cls(group=group, delay_seconds=delay, wait_for=wait_for)

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "delay_seconds": self.delay_seconds, "wait_for": self.wait_for}


def _int(value: object, field_name: str, high: int) -> int:
    # The same rule and message as domain.values.check_int (which imports this module).
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ValidationError(f"{field_name} must be an integer from 0 to {high}", field=field_name)
    return value


@dataclass(frozen=True)
class StartGroup:
    number: int
    machines: tuple[str, ...]
    delay_seconds: int = 0  # the longest "delay" wait of the group
    tools: tuple[str, ...] = ()  # machines whose Tools heartbeat the group waits for
    tools_timeout: int = 0
    waits: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "waits", bool(self.delay_seconds or self.tools))


def order_of(spec: Mapping[str, Any]) -> StartOrder:
    """A machine spec's start order (group 0, no wait, when it gives none)."""
    raw = spec.get("start_order")
    return StartOrder() if raw is None else StartOrder(**raw)


def has_start_order(specs: Iterable[Mapping[str, Any]]) -> bool:
    return any(spec.get("start_order") is not None for spec in specs)


def start_groups(specs: Iterable[Mapping[str, Any]]) -> list[StartGroup]:
    """The machines grouped for starting, first group first (machine order kept inside a group)."""
    by_group: dict[int, list[tuple[str, StartOrder]]] = {}
    for spec in specs:
        by_group.setdefault(order_of(spec).group, []).append((spec["name"], order_of(spec)))
    groups = []
    for number in sorted(by_group):
        members = by_group[number]
        delays = [o.delay_seconds for _, o in members if o.wait_for == "delay"]
        tools = [(name, o.delay_seconds) for name, o in members if o.wait_for == "tools"]
        groups.append(
            StartGroup(
                number=number,
                machines=tuple(name for name, _ in members),
                delay_seconds=max(delays, default=0),
                tools=tuple(name for name, _ in tools),
                tools_timeout=max((t for _, t in tools), default=0),
            )
        )
    return groups


def stop_groups(specs: Iterable[Mapping[str, Any]]) -> list[StartGroup]:
    """Power-off order: the last group to start stops first."""
    return list(reversed(start_groups(specs)))


@dataclass(frozen=True)
class GroupStarted:
    """What happened to one group: who started, and whose Tools did not answer in time."""

    number: int
    machines: tuple[str, ...]
    tools_late: tuple[str, ...] = ()


def start_in_order(
    groups: list[StartGroup],
    start: Callable[[tuple[str, ...]], None],
    tools_running: Callable[[str, float], bool],
    sleep: Callable[[float], None],
    wants: Callable[[str], bool] = lambda _: True,
) -> list[GroupStarted]:
    """Start each group (`start` gets the group's machines that `wants` still names, and may start
    them in parallel), then wait as the group says before the next one. A group with nothing left
    to start (already done before a restart) does not wait again. `tools_running(machine, timeout)`
    waits for one machine's Tools heartbeat and says whether it came. The last group never waits."""
    done: list[GroupStarted] = []
    for index, group in enumerate(groups):
        todo = tuple(m for m in group.machines if wants(m))
        if not todo:
            continue
        start(todo)
        late: list[str] = []
        if index < len(groups) - 1:
            for machine in group.tools:
                if machine in todo and not tools_running(machine, float(group.tools_timeout)):
                    late.append(machine)
            if group.delay_seconds:
                sleep(float(group.delay_seconds))
        done.append(GroupStarted(group.number, todo, tuple(late)))
    return done


def stop_in_order(
    groups: list[StartGroup], stop: Callable[[tuple[str, ...]], None], wants: Callable[[str], bool] = lambda _: True
) -> list[tuple[str, ...]]:
    """Stop each group of `stop_groups` in turn (no waits: a power-off task ends when the VM is off)."""
    stopped = []
    for group in groups:
        todo = tuple(m for m in group.machines if wants(m))
        if todo:
            stop(todo)
            stopped.append(todo)
    return stopped
