"""What each trade the catch-up goal could ask for would buy (issue 15): a rebuild of the read models
from zero, on one store, as is and with one thing given up at a time, next to the raw read.

The goal is a catch-up (from zero) at half the raw notification-log read rate or better. This bench
rebuilds on one 100,000-event store (`scripts.bench.audit`'s history; `--schema` reuses a store it
kept), each variant `--repeat` times in an order that turns round to round, each after the read models
were emptied, their tables compacted (VACUUM FULL) and a CHECKPOINT (so no variant pays for the one
before), and prints its rate and its ratio to the raw read measured just before it:

- `as is`: every read model (`scripts.bench.audit`'s "from zero");
- `audit log alone` / `every read model but the audit log`: what the audit log costs;
- `no summaries`: the audit log without its summaries (the reader process and this one make "" instead;
  a `sitecustomize` on the reader's PYTHONPATH does it there): what computing them when read would save;
- `3 audit indexes`: the audit log with its service, time and aggregate indexes only (the actor, type,
  configuration, deployment, stage and from-stage filters would scan);
- `unlogged`: every read model's table UNLOGGED (no WAL: a crash of the database empties them, and a
  standby has none);
- `all three trades`: the last three at once.

Nothing here changes Stagekeeper: the variants are made by this bench alone, and undone after each.
Usage: .venv/bin/python -m scripts.bench.catchup_trades [--schema NAME] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from adapters.runtime import Runtime
from adapters.settings import Settings
from projections import raw as raw_module
from projections.base import Projection
from projections.follower import ProjectionFollower
from scripts.bench.audit import history, raw_read_rate, reset
from scripts.bench.common import CONNINFO, URL, schema

KEPT_INDEXES = ("sk_audit_service", "sk_audit_at", "sk_audit_aggregate")
NO_SUMMARIES = """
import projections.summaries

def _none(kind, data):
    return ""

projections.summaries.summarise = _none
"""


@dataclass(frozen=True)
class Variant:
    label: str
    only_audit: bool = False
    without_audit: bool = False
    no_summaries: bool = False
    few_indexes: bool = False
    unlogged: bool = False


VARIANTS = (
    Variant("as is"),
    Variant("audit log alone", only_audit=True),
    Variant("every read model but the audit log", without_audit=True),
    Variant("no summaries", no_summaries=True),
    Variant("3 audit indexes", few_indexes=True),
    Variant("unlogged", unlogged=True),
    Variant("all three trades", no_summaries=True, few_indexes=True, unlogged=True),
)


class Store:
    def __init__(self, name: str) -> None:
        self.name = name
        self.url = f"{URL}?schema={name}"

    def execute(self, statement: str) -> list[tuple[object, ...]]:
        with psycopg.connect(CONNINFO, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {self.name}")
            cursor = conn.execute(statement.encode())
            return cursor.fetchall() if cursor.description else []

    def tables(self, projections: list[Projection]) -> list[str]:
        return [table for projection in projections for table in projection.tables]


def _no_summary(event_type: str, data: dict[str, Any]) -> str:
    return ""


@contextmanager
def no_summaries(tmp: Path) -> Iterator[None]:
    """Summaries made as "" here and in the reader process (started with PYTHONPATH)."""

    hook = tmp / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(NO_SUMMARIES)
    saved_path, saved = os.environ.get("PYTHONPATH"), raw_module.summarise  # type: ignore[attr-defined]
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(hook), saved_path)))
    raw_module.summarise = _no_summary  # type: ignore[attr-defined]
    try:
        yield
    finally:
        raw_module.summarise = saved  # type: ignore[attr-defined]
        if saved_path is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = saved_path


@contextmanager
def few_indexes(store: Store, audit: Projection) -> Iterator[None]:
    """The audit log with KEPT_INDEXES only: the others dropped, and left out of its DDL meanwhile."""
    declared = audit.ddl
    dropped = [
        ddl for ddl in declared if ddl.startswith("CREATE INDEX") and not any(f" {n} " in ddl for n in KEPT_INDEXES)
    ]
    for ddl in dropped:
        store.execute(f"DROP INDEX IF EXISTS {ddl.split()[5]}")
    audit.ddl = tuple(ddl for ddl in declared if ddl not in dropped)  # type: ignore[misc]
    try:
        yield
    finally:
        audit.ddl = declared  # type: ignore[misc]
        for ddl in dropped:
            store.execute(ddl)


@contextmanager
def unlogged(store: Store, tables: list[str]) -> Iterator[None]:
    for table in tables:
        store.execute(f"ALTER TABLE {table} SET UNLOGGED")
    try:
        yield
    finally:
        for table in tables:
            store.execute(f"ALTER TABLE {table} SET LOGGED")


def rebuild(store: Store, variant: Variant, tmp: Path) -> tuple[float, float]:
    """(catch-up events/s, raw read events/s just before) for one variant."""
    with ExitStack() as stack:
        if variant.no_summaries:
            stack.enter_context(no_summaries(tmp))
        runtime = Runtime(Settings(database_url=store.url, admin_password="bench"))
        stack.callback(runtime.close)
        everything = runtime.projections
        audit = next(p for p in everything if p.name == "audit")
        chosen = (
            [audit] if variant.only_audit else [p for p in everything if not (variant.without_audit and p is audit)]
        )
        if variant.few_indexes:
            stack.enter_context(few_indexes(store, audit))
        if variant.unlogged:
            stack.enter_context(unlogged(store, store.tables(everything)))
        reset(runtime, everything)
        for table in store.tables(everything):
            store.execute(f"VACUUM FULL {table}")
        store.execute("CHECKPOINT")
        time.sleep(1)
        head = runtime.app.head()
        raw = max(raw_read_rate(runtime) for _ in range(2))
        follower = ProjectionFollower(runtime.app, runtime.store, chosen, reader=runtime.projection_follower.reader)
        started = time.perf_counter()
        follower.catch_up()
        return head / (time.perf_counter() - started), raw


def measure(store: Store, repeat: int) -> None:
    figures: dict[str, list[tuple[float, float]]] = {variant.label: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(repeat):
            order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
            for variant in order:
                rate, raw = rebuild(store, variant, Path(tmp))
                figures[variant.label].append((rate, raw))
                print(f"  round {round_ + 1}, {variant.label}: {rate:,.0f} events/s, raw read {raw:,.0f}/s", flush=True)
    print("\ncatch-up from zero (min / median / max over the rounds); goal >= 0.5x the raw read")
    for variant in VARIANTS:
        runs = figures[variant.label]
        rates = [rate for rate, _ in runs]
        ratios = [rate / raw for rate, raw in runs]
        print(
            f"{variant.label:<36} {min(rates):>7,.0f} / {statistics.median(rates):>7,.0f} / {max(rates):>7,.0f} "
            f"events/s; {min(ratios):.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f}x the raw read"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", help="a store kept by an earlier run (default: build one)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.schema:
        measure(Store(args.schema), args.repeat)
        return
    with schema() as (name, url):
        runtime = Runtime(Settings(database_url=url, admin_password="bench"))
        history(runtime, 200, args.events, 5_000)
        runtime.close()
        measure(Store(name), args.repeat)


if __name__ == "__main__":
    main()
