"""Audit lines for the governance events: approvals, stop the line, freeze windows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Data = dict[str, Any]


def _window(w: Data) -> str:
    scope = "every service" if w.get("service_id") is None else f"service {w['service_id']}"
    if w.get("stage"):
        scope = f"stage '{w['stage']}' of {scope}"
    repeat = f", weekly until {w['until'] or 'further notice'}" if w.get("recurrence") == "weekly" else ""
    return f"'{w['name']}' on {scope}: {w['start']} to {w['end']} {w['timezone']}{repeat}"


def _requested(d: Data) -> str:
    what = f"{d['kind']} into stage '{d['stage']}' of {d['target_id']}"
    needs = f"needs {d['needed']} approval(s) from '{d['group']}'" if d["needed"] else "no approval needed"
    when = f", scheduled for {d['run_at']}" if d.get("run_at") else ""
    return f"{what} asked for: {needs}{when}"


GOVERNANCE_SUMMARIES: dict[str, Callable[[Data], str]] = {
    "Approval.Requested": _requested,
    "Approval.Approved": lambda d: f"approved by {d['actor']}",
    "Approval.Rejected": lambda d: f"rejected by {d['actor']}",
    "Approval.Expired": lambda d: f"expired: {d['reason']}",
    "Approval.Voided": lambda d: f"voided: {d['reason']}",
    "Approval.Executed": lambda d: f"carried out as {d['actor']}, approved by {', '.join(d['approvers']) or 'nobody'}",
    "ApprovalDesk.Opened": lambda d: "approval desk opened",
    "ApprovalDesk.Filed": lambda d: f"approval request {d['approval_id']} opened",
    "ApprovalDesk.Closed": lambda d: f"approval request {d['approval_id']} closed ({d['state']})",
    "StopTheLine.Installed": lambda d: "stop-the-line switch installed",
    "StopTheLine.Started": lambda d: f"line stopped: every lifecycle command refused ({d['reason']})",
    "StopTheLine.Lifted": lambda d: "line running again",
    "FreezeCalendar.Opened": lambda d: "freeze calendar opened",
    "FreezeCalendar.WindowAdded": lambda d: f"freeze window {_window(d['window'])} added",
    "FreezeCalendar.WindowChanged": lambda d: f"freeze window {_window(d['before'])} -> {_window(d['window'])}",
    "FreezeCalendar.WindowRemoved": lambda d: f"freeze window {_window(d['window'])} removed",
    "FreezeCalendar.Overridden": lambda d: (
        f"freeze window {d['window_id']} overridden for {d['command']} of {d['target_id']} into stage "
        f"'{d['stage']}': {d['reason']}"
    ),
}
