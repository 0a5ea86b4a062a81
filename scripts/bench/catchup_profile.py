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
"""

from __future__ import annotations

import argparse
import resource
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import eventsourcing.domain

from adapters.runtime import Runtime
from adapters.settings import Settings
from projections import follower as follower_module
from projections import pipeline, raw
from projections.base import Projection
from projections.follower import ProjectionFollower
from projections.store import SafeCursor
from scripts.bench.audit import SyntheticClock, build, raw_read_rate, reset
from scripts.bench.common import URL, schema


class Clock:
    """Wall time per label; time spent in a nested label is not counted in the one around it."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
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
        elif thread is not threading.main_thread():
            label = f"(read-ahead thread) {label}"
        frame = [label, time.perf_counter(), 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            elapsed = time.perf_counter() - frame[1]
            self.totals[label] += elapsed - frame[2]
            if self._stack:
                self._stack[-1][2] += elapsed

    def current(self) -> str:
        if not self._stack:
            return "follower"
        return str(self._stack[-1][0]).removeprefix("(read-ahead thread) ").removeprefix("(index builder) ")

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
            if getattr(projection, "derives_from", None) is not None:  # (absent in older checkouts)
                clock.wrap(projection, "derive", f"{projection.name}: Python")
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
        clock = SyntheticClock(timedelta(days=365) / args.events)
        original = eventsourcing.domain.datetime_now_with_tzinfo
        eventsourcing.domain.datetime_now_with_tzinfo = clock
        try:
            build(runtime, 200, args.events, 5_000)
        finally:
            eventsourcing.domain.datetime_now_with_tzinfo = original
        runtime.close()
        run(url, args.repeat, modes)


def run(url: str, repeat: int, modes: list[str]) -> None:
    runtime = Runtime(Settings(database_url=url, admin_password="bench"))
    everything = runtime.projections
    head = runtime.app.head()
    clock = Clock()
    instrument(clock, everything)
    summary_label(clock)
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    raws = []
    for _ in range(repeat):
        for mode in results:
            reset(runtime, everything)
            raws.append(max(raw_read_rate(runtime) for _ in range(2)))
            spec = runtime.projection_follower.reader if mode == "reader process" else None
            follower = ProjectionFollower(runtime.app, runtime.store, everything, reader=spec)
            clock.totals.clear()
            own_before, children_before = cpu()
            started = time.perf_counter()
            follower.catch_up()
            wall = time.perf_counter() - started
            own_after, children_after = cpu()
            figures = dict(clock.totals)
            figures["other (follower loop, commits, batches)"] = wall - sum(
                value
                for label, value in clock.totals.items()
                if not label.startswith(("(read-ahead", "(index builder"))
            )
            figures["= wall"] = wall
            figures["CPU: this process"] = own_after - own_before
            figures["CPU: reader process"] = children_after - children_before
            results[mode].append(figures)
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
