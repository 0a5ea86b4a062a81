"""`--wait`: follow a deployment's progress stream (server-sent events) until it rests.

One line per machine: a bar that completes when the machine's step of the current operation is done,
with the last thing that happened to it beside it; deployment-wide events print above the bars. The
stream is resumed with `Last-Event-ID` when the connection drops. Ctrl-C stops waiting, never the
deployment: the command says so and how to follow again."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn

from api.client.http import FAILED, Api, ClientError

# Events after which a machine's part of the current operation is done.
MACHINE_DONE = {
    "MachineProvisioned",
    "MachineMoved",
    "MachineRecloned",
    "MachineDestroyed",
    "MachineReleased",
    "MachineReconfigured",
    "MachinePowerChanged",
    "MachineSnapshotDone",
}
FAILED_STATES = {"failed"}
RECONNECT_LIMIT = 20


@dataclass
class Frame:
    event: str = "message"
    data: str = ""
    id: str | None = None


def frames(lines: Iterator[str]) -> Iterator[Frame]:
    """Server-sent events from the response's lines (comments and heartbeats skipped)."""
    frame = Frame()
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                frame.data = "\n".join(data)
                yield frame
            frame, data = Frame(), []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                frame.event = value
            elif name == "id":
                frame.id = value


@dataclass
class Outcome:
    state: str
    version: int
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return FAILED if self.state in FAILED_STATES else 0


def follow(
    api: Api,
    deployment_id: str,
    on_event: Callable[[dict[str, Any]], None],
    after: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Read the stream until its `end` event; reconnects (bounded) from the last event seen."""
    last = after
    seen: list[dict[str, Any]] = []
    failures = 0
    while True:
        headers = {"Last-Event-ID": str(last)} if last else {}
        try:
            with api.stream(f"/deployments/{deployment_id}/events", headers=headers) as response:
                for frame in frames(response.iter_lines()):
                    failures = 0
                    payload = json.loads(frame.data)
                    if frame.event == "end":
                        return Outcome(str(payload["state"]), int(payload["version"]), seen)
                    if frame.event == "progress":
                        last = int(payload["version"])
                        seen.append(payload)
                        on_event(payload)
        except (httpx.TransportError, ClientError) as error:
            if isinstance(error, ClientError) and error.status is not None and error.status < 500:
                raise
            failures += 1
            if failures > RECONNECT_LIMIT:
                raise
        # The stream ended without `end` (server restart, proxy timeout): pick it up again.
        sleep(min(0.2 * 2**failures, 5.0))


class Bars:
    """Rich progress bars, one per machine (plain lines when the output is not a terminal)."""

    def __init__(self, console: Console, machines: list[str]) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.fields[machine]:<16}"),
            BarColumn(bar_width=24, complete_style="cyan", finished_style="green"),
            TextColumn("{task.fields[step]}"),
            console=console,
            transient=False,
            disable=not console.is_terminal,
        )
        self.tasks: dict[str, TaskID] = {}
        for machine in machines:
            self._task(machine)

    def _task(self, machine: str) -> TaskID:
        if machine not in self.tasks:
            self.tasks[machine] = self.progress.add_task(machine, total=1, machine=machine, step="waiting")
        return self.tasks[machine]

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def event(self, payload: dict[str, Any]) -> None:
        machine = payload.get("machine")
        summary = str(payload.get("summary", payload.get("type")))
        if not self.console.is_terminal:
            prefix = f"{machine}: " if machine else ""
            self.console.print(f"[{payload.get('state')}] {prefix}{summary}", highlight=False, soft_wrap=True)
            return
        if machine:
            task = self._task(str(machine))
            # "Deployment.MachineProvisioned": the event's class within its aggregate.
            done = str(payload.get("type", "")).rpartition(".")[2] in MACHINE_DONE
            self.progress.update(task, step=summary, completed=1 if done else 0)
        else:
            self.progress.console.print(f"[{payload.get('state')}] {summary}", highlight=False)

    def finish(self, outcome: Outcome) -> None:
        if outcome.exit_code == 0:
            for task in self.tasks.values():
                self.progress.update(task, completed=1)
