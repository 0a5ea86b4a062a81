"""A timeline of one Archive Now and one restore (scripts/bench/archive.py's part 1, one run):
every vCenter call and task wait, every file read and write, every event-store write and read and
every follower pass, by thread, in milliseconds from the command; then the plain copy's own.

Usage: PYTHONPATH=. .venv/bin/python -m scripts.bench.archive_timeline [--disk-mib 8] [--copy-ms 150]
       [--runs 2] [--phases] (the last run is shown: the first warms the connections and the lanes' threads)
`--phases`: every run's head (from the command to the first and to the last copy task sent) and
tail (from the last copy task's end to the clock's stop) of the archive and the restore, beside the
small-by-HTTP plain copy's (its two rounds), and no timeline; with each the counts that load does
not change: PostgreSQL statements (psycopg executes, copies and commits), vCenter SOAP calls and
HTTP file accesses.
"""

from __future__ import annotations

import argparse
import functools
import gc
import threading
import time
from collections.abc import Callable
from typing import Any

from adapters.runtime import Runtime
from adapters.vcenter.pyvmomi import archives as pyvmomi_archives
from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from adapters.vcenter.pyvmomi.session import Session
from domain.processes.archives import ArchiveProcess
from domain.processes.deployments import DeploymentProcess
from domain.stagekeeper import Stagekeeper
from scripts.bench import archive as bench

Span = tuple[float, float, str, str]  # start, end, thread, what
SPANS: list[Span] = []
MARKS: list[tuple[float, str]] = []
_LOCK = threading.Lock()


def _label(name: str, args: tuple[Any, ...]) -> str:
    shown = []
    for arg in args[1:3]:
        text = str(arg)
        if "DatastoreFile" in type(arg).__name__:
            text = str(getattr(arg, "path", text)).rsplit("/", 1)[-1]
        elif callable(arg):
            text = getattr(arg, "__name__", type(arg).__name__)
        shown.append(text[:40])
    return f"{name}({', '.join(shown)})"


def timed(owner: Any, name: str, label: Callable[[tuple[Any, ...]], str] | None = None) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            what = label(args) if label else _label(f"{owner.__name__}.{name}", args)
            with _LOCK:
                SPANS.append((started, time.perf_counter(), threading.current_thread().name, what))

    setattr(owner, name, wrapper)


def _gc_timing() -> None:
    """Each garbage collection as a span (generation and objects collected)."""
    began: dict[str, float] = {}

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began["at"] = time.perf_counter()
            return
        what = f"gc gen {info['generation']} ({info['collected']})"
        with _LOCK:
            started = began.pop("at", time.perf_counter())
            SPANS.append((started, time.perf_counter(), threading.current_thread().name, what))

    gc.callbacks.append(callback)


COUNTS: list[tuple[float, str]] = []  # (when, what): statements, commits, SOAP calls, file accesses


def counted(owner: Any, name: str, what: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        COUNTS.append((time.perf_counter(), what))
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def _counting() -> None:
    import psycopg
    from pyVmomi import SoapAdapter

    for name in ("execute", "executemany", "copy"):
        counted(psycopg.Cursor, name, "sql")
    counted(psycopg.Connection, "_commit_gen", "commit")
    counted(SoapAdapter.SoapStubAdapter, "InvokeMethod", "soap")
    counted(SoapAdapter.SoapStubAdapter, "InvokeAccessor", "soap")
    counted(pyvmomi_archives.PyVmomiArchiveStorage, "_http", "http")


def counts(start: float, end: float) -> str:
    found: dict[str, int] = {}
    for at, what in COUNTS:
        if start <= at <= end:
            found[what] = found.get(what, 0) + 1
    return " ".join(f"{k} {found.get(k, 0)}" for k in ("sql", "commit", "soap", "http"))


def instrument() -> None:
    _gc_timing()
    _counting()
    storage = pyvmomi_archives.PyVmomiArchiveStorage
    for name in ("vm_file_sizes", "make_folder", "copy_file", "digest", "read_file", "write_file",
                 "machine_record", "register_vm", "attach_disks", "delete_folder"):  # fmt: skip
        timed(storage, name)
    for name in ("power_on", "power_off", "tag_vm", "vm_nics", "set_nics"):
        timed(PyVmomiDriver, name)
    timed(Session, "wait", lambda a: f"  task wait: {a[2]}")
    for name in ("record_archive_step", "complete_restore", "archive_now", "restore_archive", "archive",
                 "deployment", "commit", "undeploy"):  # fmt: skip
        timed(Stagekeeper, name, lambda a, n=name: f"app.{n}")  # type: ignore[misc]
    for name in ("drive", "handle"):
        timed(ArchiveProcess, name, lambda a, n=name: f"ArchiveProcess.{n}")  # type: ignore[misc]
        timed(DeploymentProcess, name, lambda a, n=name: f"DeploymentProcess.{n}")  # type: ignore[misc]
    original = Runtime.catch_up

    def catch_up(runtime: Runtime) -> None:
        for attr in ("projection_follower", "process_follower", "archive_follower", "approvals_tick"):
            follower = getattr(runtime, attr)
            if not getattr(follower, "_timed", False):
                timed_follower(follower, attr, "sweep" if attr == "approvals_tick" else "catch_up")
        original(runtime)

    Runtime.catch_up = catch_up  # type: ignore[method-assign]
    original_one_run = bench.baseline

    def baseline(*args: Any, **kwargs: Any) -> float:
        MARKS.append((time.perf_counter(), f"plain copy {args[2]}"))
        took = original_one_run(*args, **kwargs)
        MARKS.append((time.perf_counter(), f"plain copy {args[2]} end"))
        return took

    bench.baseline = baseline


def timed_follower(follower: Any, attr: str, method: str = "catch_up") -> None:
    original = getattr(follower, method)

    def catch_up(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with _LOCK:
                SPANS.append((started, time.perf_counter(), threading.current_thread().name, f"{attr}.{method}"))

    setattr(follower, method, catch_up)
    follower._timed = True


def show(title: str, start: float, end: float) -> None:
    print(f"\n== {title}: {1000 * (end - start):.0f} ms")
    for s, e, thread, what in sorted(SPANS):
        if s >= start and e <= end + 0.001:
            at, until, took = 1000 * (s - start), 1000 * (e - start), 1000 * (e - s)
            print(f"{at:7.1f} {until:7.1f} {took:6.1f}  {thread[-22:]:22} {what}")


def phases(start: float, end: float) -> str:
    """Head and tail of a span: to the first and the last copy task sent, from the last one's end."""
    copies = [
        (s, e) for s, e, _, what in SPANS if what.startswith("PyVmomiArchiveStorage.copy_file") and start <= s <= end
    ]
    if not copies:
        return "no copy task"
    first, last, ended = min(s for s, _ in copies), max(s for s, _ in copies), max(e for _, e in copies)
    return (f"{1000 * (end - start):5.0f} ms: copies sent {1000 * (first - start):5.1f}-{1000 * (last - start):5.1f}, "
            f"last copy ended {1000 * (ended - start):5.1f}, tail {1000 * (end - ended):5.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--disk-mib", type=int, default=8)
    parser.add_argument("--copy-ms", type=int, default=150)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--phases", action="store_true", help="each run's heads and tails only")
    args = parser.parse_args()
    instrument()
    original_archive_now = Stagekeeper.archive_now
    original_restore = Stagekeeper.restore_archive

    def archive_now(self: Stagekeeper, *a: Any, **k: Any) -> Any:
        MARKS.append((time.perf_counter(), "archive"))
        return original_archive_now(self, *a, **k)

    def restore_archive(self: Stagekeeper, *a: Any, **k: Any) -> Any:
        MARKS.append((time.perf_counter(), "restore"))
        return original_restore(self, *a, **k)

    Stagekeeper.archive_now = archive_now  # type: ignore[method-assign]
    Stagekeeper.restore_archive = restore_archive  # type: ignore[method-assign]
    import sys

    sys.argv = [sys.argv[0], "--archives", "0", "--runs", str(args.runs), "--disk-mib", str(args.disk_mib),
                "--copy-ms", str(args.copy_ms)]  # fmt: skip
    results: list[dict[str, Any]] = []
    original_one_run = bench.one_run

    def one_run(*a: Any, **k: Any) -> dict[str, Any]:
        SPANS.clear()
        MARKS.clear()
        COUNTS.clear()
        result = original_one_run(*a, **k)
        results.append(result)
        marks = {what: at for at, what in MARKS}
        if args.phases:
            for name, took in (("archive", result["archive_s"]), ("restore", result["restore_s"])):
                span = (marks[name], marks[name] + took)
                print(f"run {len(results)} {name:8} {phases(*span)}; {counts(*span)}")
            for name in sorted(m for m in marks if m.startswith("plain copy") and m.endswith("c")):
                start, end = marks[name], marks[f"{name} end"]
                rounds = sorted(s for s, _, _, what in SPANS if what.startswith("PyVmomiArchiveStorage.copy_file")
                                and start <= s <= end)  # fmt: skip
                middle = start + (rounds[len(rounds) // 2] - start) if rounds else end
                print(f"run {len(results)} plain    {phases(start, middle - 0.0005)} | {phases(middle - 0.0005, end)}; "
                      f"{counts(start, end)}")  # fmt: skip
            return result
        for name, took in (("archive", result["archive_s"]), ("restore", result["restore_s"])):
            start = marks[name]
            full = [e - s for s, e, _, what in SPANS if what.startswith("gc gen 2") and start <= s <= start + took]
            end = start + took
            # Before: from the command to the process's drive; tail: from its final write to the clock's stop.
            drives = [s for s, _, _, what in SPANS if what == "ArchiveProcess.drive" and start <= s <= end]
            final = "app.complete_restore" if name == "restore" else "app.record_archive_step"
            writes = [e for _, e, th, what in SPANS if what == final and th == "MainThread" and start <= e <= end]
            before = f"{1000 * (min(drives) - start):.1f}" if drives else "?"
            tail = f"{1000 * (end - max(writes)):.1f}" if writes else "?"
            collections = ", ".join(f"{1000 * t:.0f} ms" for t in full) or "none"
            print(f"run {len(results)}: {name} {1000 * took:.0f} ms (before the drive {before} ms, after its final "
                  f"write {tail} ms), full collections in it: {collections}")  # fmt: skip
        return result

    bench.one_run = one_run
    bench.main()
    if args.phases:
        return
    marks = dict((what, at) for at, what in MARKS)
    result = results[-1]
    archive_start = marks["archive"]
    show("Archive Now", archive_start, archive_start + result["archive_s"])
    restore_start = marks["restore"]
    show("restore", restore_start, restore_start + result["restore_s"])
    for name, at in sorted(marks.items(), key=lambda item: item[1]):
        if name.startswith("plain copy") and name.endswith("c"):
            show(f"plain copy small by HTTP ({name})", at, marks[f"{name} end"])


if __name__ == "__main__":
    main()
