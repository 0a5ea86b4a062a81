"""Audit lines for the Archive aggregate's events (merged into projections/summaries.py SUMMARIES)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Data = dict[str, Any]


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


def _requested(d: Data) -> str:
    machines = ", ".join(m["name"] for m in d["machines"])
    keep = f"; kept {d['retention_days']} days" if d.get("retention_days") else ""
    return (
        f"Archive Now of deployment {d['deployment_id']} ('{d['configuration_name']}' v{d['configuration_version']} in "
        f"'{d['stage']}'): machines {machines}, {d['consistency']} first, to tier {d['tier']}{keep}"
    )


def _file(d: Data) -> str:
    how = f"referenced from archive {d['reused_from']}" if d.get("reused_from") else "copied"
    size = _size(int(d["size"]))
    return f"file {d['name']} of '{d['machine']}' ({size}, SHA-256 {d['sha256'][:12]}…) {how} on {d['tier']}"


def _machine(d: Data) -> str:
    r = d["record"]
    nics = ", ".join(f"{n['network']} {n.get('mac') or '(auto MAC)'}" for n in r.get("nics", [])) or "no NIC"
    return (
        f"machine '{d['machine']}' recorded: {r['cpus']} CPU, {r['memory_mib']} MiB, "
        f"{len(r.get('disks', []))} disk(s), {nics}; on {r.get('datastore')} in {r.get('resource_pool')}"
    )


ARCHIVE_SUMMARIES: dict[str, Callable[[Data], str]] = {
    "Archive.Requested": _requested,
    "Archive.ConsistencyReached": lambda d: (
        "machines consistent for the copy"
        + (f" (powered off: {', '.join(d['powered_off'])})" if d.get("powered_off") else "")
    ),
    "Archive.MachineArchived": _machine,
    "Archive.FileStored": _file,
    "Archive.Completed": lambda d: f"archive complete ({_size(int(d['bytes']))})",
    "Archive.Failed": lambda d: f"archive failed: {d['failure']}",
    "Archive.HoldSet": lambda d: "archive put on hold",
    "Archive.HoldLifted": lambda d: "archive hold lifted",
    "Archive.RetentionSet": lambda d: (
        f"archive retention set to {d['days']} days" if d.get("days") else "archive kept without time limit"
    ),
    "Archive.Deleted": lambda d: "archive deleted",
    "Archive.RestoreRequested": lambda d: (
        f"restore {d['restore_id']} into '{d['stage']}' requested" + (" (fenced)" if d.get("fence") else "")
    ),
    "Archive.MachineRestored": lambda d: (
        f"restore {d['restore_id']}: machine '{d['machine']}' registered as {d['vm_id']}"
    ),
    "Archive.Restored": lambda d: f"restore {d['restore_id']} done: deployment {d['deployment_id']}",
    "Archive.MoveStarted": lambda d: f"move from tier {d['from_tier']} to tier {d['to_tier']} started",
    "Archive.FileMoved": lambda d: f"file {d['name']} of '{d['machine']}' copied and checked on tier {d['tier']}",
    "Archive.Moved": lambda d: f"archive moved from tier {d['from_tier']} to tier {d['tier']}",
    "Archive.SourcesReleased": lambda d: (
        f"{d['count']} copies no longer needed freed (the old tier's after a move, the new tier's after a failed one)"
    ),
    "Archive.MoveFailed": lambda d: f"move to tier {d['tier']} failed (the archive stays where it was): {d['failure']}",
    "Archive.RestoreFailed": lambda d: f"restore {d['restore_id']} failed: {d['failure']}",
}
