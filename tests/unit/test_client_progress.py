"""The client's progress stream parsing and its per-machine bars (no I/O)."""

from __future__ import annotations

import io

from rich.console import Console

from api.client.progress import Bars, Outcome, frames


def test_server_sent_events_are_parsed_frame_by_frame() -> None:
    lines = ["id: 3", "event: progress", 'data: {"a": 1}', "", ": still working", "", "event: end", "data: {}", ""]
    parsed = list(frames(iter(lines)))
    assert [(f.event, f.id, f.data) for f in parsed] == [("progress", "3", '{"a": 1}'), ("end", None, "{}")]


def test_a_machine_bar_completes_when_its_step_is_done() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with Bars(console, ["web1", "db1"]) as bars:
        bars.event({"type": "Deployment.MachineProvisioned", "machine": "web1", "summary": "done", "state": "x"})
        bars.event({"type": "Deployment.AddressesAssigned", "machine": "db1", "summary": "ip", "state": "x"})
        finished = {t.fields["machine"]: t.finished for t in bars.progress.tasks}
        assert finished == {"web1": True, "db1": False}
        bars.finish(Outcome("deployed", 9))
        assert all(t.finished for t in bars.progress.tasks)


def test_a_failed_deployment_leaves_unfinished_bars_and_exits_1() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with Bars(console, ["web1"]) as bars:
        outcome = Outcome("failed", 4)
        bars.finish(outcome)
        assert not bars.progress.tasks[0].finished
    assert outcome.exit_code == 1
