"""Where a projection catch-up's wall time goes: a rebuild of every read model from zero, split into
reading, parsing, each read model's Python, its statements and COPYs in PostgreSQL, commits, index
builds and ANALYZE (issue 15).

Runs on a store built by `scripts.bench.audit --keep` (or builds one), with and without the reader
process, `--repeat` times each, and prints a table of seconds and microseconds per event (medians).
The timers wrap the follower's methods, so their own cost (a few microseconds a call, not per event)
is in the figures; "other" is the rest of the wall time: the follower's loop, tracking, batches.
Usage: .venv/bin/python -m scripts.bench.catchup_profile [--schema NAME | --events 100000] [--repeat 3]
       [--only reader|in-process]
Each index build is timed on its own line too ("(index builder) NAME": that builder thread's wall time).
"CPU: ..." lines: each part's CPU time (of the thread that ran it), this process's and the reader's, and
the PostgreSQL processes' (from /proc, so the database must run on this machine): the profile's own
backends (known by PGAPPNAME; the reader's apart, parallel index-build workers counted with them) and
the server's WAL writer, checkpointer and background writer. "phase: ..." lines split the wall and CPU
between following the log and the index builds with ANALYZE at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from adapters.runtime import Runtime
from adapters.settings import Settings
from projections import follower as follower_module
from projections import pipeline, raw
from projections.base import Projection
from projections.follower import ProjectionFollower
from projections.store import SafeCursor
from scripts.bench.audit import history, raw_read_rate, reset
from scripts.bench.common import CONNINFO, URL, schema

# This process's and its reader's PostgreSQL connections are known by this name (libpq reads PGAPPNAME).
APPLICATION = f"sk-catchup-profile-{os.getpid()}"
TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float | None:
    """A process's user + system CPU seconds (Linux /proc), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def _idle() -> float:
    """Idle core-seconds of the whole machine so far (/proc/stat: idle + iowait)."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    return (int(fields[4]) + int(fields[5])) / TICK


class PostgresCpu:
    """CPU time of the PostgreSQL processes serving this profile: its backends (the reader's apart, known by
    its query) sampled from /proc every 20 ms while they live, and the server's own WAL writer, checkpointer
    and background writer. The database must run on this machine."""

    def __init__(self) -> None:
        self._conn = psycopg.connect(CONNINFO, autocommit=True, application_name="sk-catchup-profile-sampler")
        self.first: dict[int, float] = {}  # pid -> CPU when first seen
        self.last: dict[int, float] = {}
        self.kind: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = False

    def _sample(self) -> None:
        rows = self._conn.execute(
            "SELECT pid, backend_type, application_name, query FROM pg_stat_activity "
            "WHERE application_name = %s OR backend_type IN ('walwriter', 'checkpointer', 'background writer') "
            "OR leader_pid IN (SELECT pid FROM pg_stat_activity WHERE application_name = %s)",
            (APPLICATION, APPLICATION),
        ).fetchall()
        for pid, backend_type, _, query in rows:
            used = _proc_cpu(pid)
            if used is None:
                continue
            if backend_type == "parallel worker":
                kind = "PostgreSQL: follower's backends"
            elif backend_type != "client backend":
                kind = "PostgreSQL: WAL writer, checkpointer, bgwriter"
            elif "uuid_send(originator_id)" in (query or "") or self.kind.get(pid) == "PostgreSQL: reader's backend":
                kind = "PostgreSQL: reader's backend"
            else:
                kind = "PostgreSQL: follower's backends"
            self.kind[pid] = kind
            # A process that started since `start` (a parallel index build's worker, the reader's backend)
            # counts from zero.
            self.first.setdefault(pid, used if self._starting else 0.0)
            self.last[pid] = used

    def start(self) -> None:
        self.first.clear()
        self.last.clear()
        self.kind.clear()
        self._starting = True
        self._sample()
        self._starting = False
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def mark(self) -> dict[str, float]:
        """CPU per kind so far (since `start`)."""
        self._sample()
        totals: dict[str, float] = defaultdict(float)
        for pid, used in self.last.items():
            totals[self.kind[pid]] += used - self.first[pid]
        return dict(totals)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.mark()

    def close(self) -> None:
        self._conn.close()


class Clock:
    """Wall time per label, and the CPU time of the thread that ran it (`cpu`); time spent in a nested
    label is not counted in the one around it."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self._local = threading.local()  # each thread's stack of [label, started, nested]
        self.lock = threading.Lock()

    @property
    def _stack(self) -> list[list[Any]]:
        stack: list[list[Any]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    @contextmanager
    def timing(self, label: str) -> Iterator[None]:
        thread = threading.current_thread()
        if thread.name.startswith("sk-index"):
            label = f"(index builder) {label}"
        elif thread.name.startswith("sk-apply"):
            label = f"(apply thread) {label}"
        elif thread is not threading.main_thread():
            label = f"(read-ahead thread) {label}"
        frame = [label, time.perf_counter(), 0.0, time.thread_time(), 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            elapsed = time.perf_counter() - frame[1]
            spent = time.thread_time() - frame[3]
            self.totals[label] += elapsed - frame[2]
            self.cpu[label] += spent - frame[4]
            if self._stack:
                self._stack[-1][2] += elapsed
                self._stack[-1][4] += spent

    def current(self) -> str:
        if not self._stack:
            return "follower"
        label = str(self._stack[-1][0])
        for prefix in ("(read-ahead thread) ", "(index builder) ", "(apply thread) "):
            label = label.removeprefix(prefix)
        return label

    def wrap(self, owner: Any, attr: str, label: str | Callable[[Any], str]) -> None:
        original = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            name = label if isinstance(label, str) else label(args[0])
            with self.timing(name):
                return original(*args, **kwargs)

        setattr(owner, attr, timed)


def instrument(clock: Clock, projections: list[Projection]) -> None:
    """Timers around the parts of a catch-up (class attributes: every follower is timed)."""
    for projection in projections:
        if projection.raw:
            clock.wrap(projection, "apply_batch", f"{projection.name}: Python")
        else:
            for topic, handler in list(projection.handlers.items()):
                projection.handlers[topic] = _timed_handler(clock, f"{projection.name}: Python", handler)
            for prefix, handler in list(projection.prefix_handlers.items()):
                projection.prefix_handlers[prefix] = _timed_handler(clock, f"{projection.name}: Python", handler)
            clock.wrap(projection, "flush", f"{projection.name}: Python")
    for attr, kind in (("execute", "SQL"), ("executemany", "SQL"), ("copy_rows", "COPY")):
        original = getattr(SafeCursor, attr)

        def timed(self: SafeCursor, *args: Any, _original: Any = original, _kind: str = kind) -> Any:
            owner = clock.current().removesuffix(": Python")
            with clock.timing(f"{owner}: {_kind}"):
                return _original(self, *args)

        setattr(SafeCursor, attr, timed)
    clock.wrap(pipeline.Reader, "take", "reader: wait and load batch")
    clock.wrap(ProjectionFollower, "_read", "read (select_notifications, in process)")
    clock.wrap(raw.RawEvent, "parse", "parse (in process)")
    clock.wrap(ProjectionFollower, "_build_indexes", "index builds")
    if hasattr(ProjectionFollower, "_build_index"):  # each index on its own line (its builder thread's wall time)
        build = ProjectionFollower._build_index

        def timed_build(self: ProjectionFollower, ddl: str, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return build(self, ddl, *args)
            finally:
                with clock.lock:
                    clock.totals[f"(index builder) {_index_name(ddl)}"] += time.perf_counter() - started

        ProjectionFollower._build_index = timed_build  # type: ignore[method-assign]
    clock.wrap(ProjectionFollower, "_analyze", "ANALYZE")
    clock.wrap(ProjectionFollower, "positions", "tracking reads")
    clock.wrap(ProjectionFollower, "_locked_positions", "tracking reads")
    clock.wrap(ProjectionFollower, "_start_reader", "reader start")
    clock.wrap(follower_module, "set_trackings", "tracking writes")


def _index_name(ddl: Any) -> str:
    text = str(ddl)
    return text.split("IF NOT EXISTS", 1)[-1].split()[0] if "IF NOT EXISTS" in text else text[:40]


def _timed_handler(clock: Clock, label: str, handler: Callable[..., None]) -> Callable[..., None]:
    def timed(*args: Any) -> None:
        with clock.timing(label):
            handler(*args)

    return timed


def summary_label(clock: Clock) -> None:
    """The audit summaries (in process they are computed on first use, inside a read model's Python)."""
    prop = raw.RawEvent.summary

    def timed(self: raw.RawEvent) -> str:
        if self._summary is not None:
            return self._summary
        with clock.timing("summaries (in process)"):
            return prop.fget(self)  # type: ignore[misc]

    raw.RawEvent.summary = property(timed)  # type: ignore[method-assign,assignment]


def cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", help="a store kept by an earlier run (default: build one)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only", choices=("reader", "in-process"), help="time one mode only (default: both, alternating)"
    )
    args = parser.parse_args()
    modes = {"reader": ["reader process"], "in-process": ["in process"]}.get(
        args.only, ["reader process", "in process"]
    )
    if args.schema:
        run(f"{URL}?schema={args.schema}", args.repeat, modes)
        return
    with schema() as (_, url):
        runtime = Runtime(Settings(database_url=url, admin_password="bench"))
        history(runtime, 200, args.events, 5_000)
        runtime.close()
        run(url, args.repeat, modes)


def run(url: str, repeat: int, modes: list[str]) -> None:
    os.environ["PGAPPNAME"] = APPLICATION
    runtime = Runtime(Settings(database_url=url, admin_password="bench"))
    everything = runtime.projections
    head = runtime.app.head()
    clock = Clock()
    instrument(clock, everything)
    summary_label(clock)
    postgres = PostgresCpu()
    at_indexes: dict[str, Any] = {}
    build_indexes = ProjectionFollower._build_indexes

    def marked(self: ProjectionFollower) -> None:
        at_indexes["postgres"] = postgres.mark()
        at_indexes["wall"] = time.perf_counter()
        at_indexes["own"], at_indexes["children"] = cpu()
        build_indexes(self)

    ProjectionFollower._build_indexes = marked  # type: ignore[method-assign]
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    raws = []
    for _ in range(repeat):
        for mode in results:
            reset(runtime, everything)
            raws.append(max(raw_read_rate(runtime) for _ in range(2)))
            spec = runtime.projection_follower.reader if mode == "reader process" else None
            follower = ProjectionFollower(runtime.app, runtime.store, everything, reader=spec)
            clock.totals.clear()
            clock.cpu.clear()
            at_indexes.clear()
            postgres.start()
            idle_before = _idle()
            own_before, children_before = cpu()
            started = time.perf_counter()
            follower.catch_up()
            wall = time.perf_counter() - started
            own_after, children_after = cpu()
            idle = _idle() - idle_before
            pg = postgres.stop()
            figures = dict(clock.totals)
            figures.update({f"CPU: {label}": value for label, value in clock.cpu.items()})
            figures.update({f"CPU: {kind}": value for kind, value in pg.items()})
            if at_indexes:  # the part before the index builds, and the builds (wall and CPU)
                before = at_indexes["postgres"]
                figures["phase: follow (wall)"] = at_indexes["wall"] - started
                figures["phase: indexes and ANALYZE (wall)"] = time.perf_counter() - at_indexes["wall"] - 0.0
                figures["phase: follow, CPU: this process"] = at_indexes["own"] - own_before
                figures["phase: follow, CPU: reader process"] = at_indexes["children"] - children_before
                figures["phase: indexes, CPU: this process"] = own_after - at_indexes["own"]
                for kind, value in before.items():
                    figures[f"phase: follow, CPU: {kind}"] = value
                    figures[f"phase: indexes, CPU: {kind}"] = pg.get(kind, 0.0) - value
            figures["machine: idle core-seconds (all processes)"] = idle
            figures["other (follower loop, commits, batches)"] = wall - sum(
                value
                for label, value in clock.totals.items()
                if not label.startswith(("(read-ahead", "(index builder", "(apply thread"))
            )
            figures["= wall"] = wall
            figures["CPU: this process"] = own_after - own_before
            figures["CPU: reader process"] = children_after - children_before
            results[mode].append(figures)
    postgres.close()
    print(f"{head:,} events; raw read {min(raws):,.0f} .. {max(raws):,.0f} events/s; medians of {repeat} runs")
    labels = sorted({label for runs in results.values() for figures in runs for label in figures})
    print(f"{'part':<46} " + " ".join(f"{mode + ' s':>16} {'us/event':>9}" for mode in results))
    for label in labels:
        cells = []
        for runs in results.values():
            value = statistics.median(figures.get(label, 0.0) for figures in runs)
            cells.append(f"{value:>16.3f} {value / head * 1e6:>9.1f}")
        print(f"{label:<46} " + " ".join(cells))
    for mode, runs in results.items():
        rates = [head / figures["= wall"] for figures in runs]
        print(f"{mode}: {statistics.median(rates):,.0f} events/s = {statistics.median(rates) / min(raws):.2f}x raw")
    runtime.close()


if __name__ == "__main__":
    main()
