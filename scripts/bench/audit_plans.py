"""The PostgreSQL plans of the audit log's queries on a kept store: which index each one uses (issue 15).

Every query shape of `projections/audit_queries.py` (pages by service, services, actor, configuration,
deployment, stage, type, time window; exports; a configuration's history and its time -> version
lookup; the board's versions and services at a time), the SIEM streamer's and the hash chain's, with
values picked from the store (its largest configuration, its smallest service, times early, half-way
and late). The SQL is the one the application sends (`AuditQueries` over a store that records it).
Prints, per query, the median execution time of three EXPLAIN ANALYZE runs and the plan's nodes with
the indexes they scan: run it before and after an index change (or on a copy of `sk_audit` with the
change made by hand) and compare the lines.
Usage: .venv/bin/python -m scripts.bench.audit_plans --schema NAME [--verbose] [LABEL ...]
(a store kept by `scripts.bench.catchup_profile` or built by `scripts.bench.audit`'s `build`).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

import psycopg

from projections.audit import HEAD_QUERY
from projections.audit_queries import AUDIT_FIELDS, AuditFilter, AuditQueries
from projections.base import iso
from projections.store import ReadStore, Row
from scripts.bench.common import CONNINFO

Query = tuple[str, tuple[Any, ...]]


class Recorder:
    """A read store that answers nothing and keeps the last statement it was given."""

    dialect = "postgres"

    def __init__(self) -> None:
        self.last: Query = ("", ())

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.last = (sql, tuple(params))
        return []

    def stream(self, sql: str, params: Sequence[Any] = (), batch: int = 1000) -> Iterator[Row]:
        self.last = (sql, tuple(params))
        return iter(())


def sql_of(call: Callable[[AuditQueries], object]) -> Query:
    recorder = Recorder()
    call(AuditQueries(cast(ReadStore, recorder)))
    return recorder.last


def month_after(at: str) -> str:
    return iso(datetime.fromisoformat(at) + timedelta(days=30))


def hour_after(at: str) -> str:
    return iso(datetime.fromisoformat(at) + timedelta(hours=1))


def cases(conn: psycopg.Connection[Any]) -> dict[str, Query]:
    def one(sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = conn.execute(sql, params).fetchone()
        assert row is not None, sql
        return row[0]

    big = one(
        "SELECT aggregate_id FROM sk_audit WHERE event_type LIKE 'Configuration.%%' "
        "GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 1"
    )
    big_service = one("SELECT service_id FROM sk_audit WHERE aggregate_id = %s LIMIT 1", (big,))
    small = one("SELECT service_id FROM sk_audit WHERE service_id IS NOT NULL GROUP BY 1 ORDER BY COUNT(*) LIMIT 1")
    configuration = one(
        "SELECT configuration_id FROM sk_audit WHERE service_id = %s AND configuration_id IS NOT NULL LIMIT 1",
        (small,),
    )
    head = one("SELECT MAX(position) FROM sk_audit")
    early, middle, late = (
        one("SELECT at FROM sk_audit WHERE position >= %s ORDER BY position LIMIT 1", (head * share // 100,))
        for share in (8, 50, 95)
    )
    versions = [
        one("SELECT at FROM sk_audit WHERE aggregate_id = %s AND aggregate_version >= %s LIMIT 1", (big, version))
        for version in (2, 2500, 4990)
    ]
    services = tuple(
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT service_id FROM sk_audit WHERE service_id IS NOT NULL ORDER BY 1 LIMIT 20"
        )
    )
    pages: dict[str, tuple[AuditFilter, int | None]] = {
        "page: default (no filter)": (AuditFilter(), None),
        "page: default, before half-way": (AuditFilter(), head // 2),
        "page: service (small)": (AuditFilter(service_id=small), None),
        "page: service (big)": (AuditFilter(service_id=big_service), None),
        "page: service big, before 20%": (AuditFilter(service_id=big_service), head // 5),
        "page: service + month (early)": (AuditFilter(service_id=small, since=early, until=month_after(early)), None),
        "page: service + month (mid)": (AuditFilter(service_id=small, since=middle, until=month_after(middle)), None),
        "page: service big + month (early)": (
            AuditFilter(service_id=big_service, since=early, until=month_after(early)),
            None,
        ),
        "page: service big + month (late)": (
            AuditFilter(service_id=big_service, since=late, until=month_after(late)),
            None,
        ),
        "page: 20 services (IN)": (AuditFilter(service_ids=services), None),
        "page: 20 services + month early": (
            AuditFilter(service_ids=services, since=early, until=month_after(early)),
            None,
        ),
        "page: month early (global)": (AuditFilter(since=early, until=month_after(early)), None),
        "page: month mid (global)": (AuditFilter(since=middle, until=month_after(middle)), None),
        "page: month late (global)": (AuditFilter(since=late, until=month_after(late)), None),
        "page: hour mid (global, < 100 rows)": (AuditFilter(since=middle, until=hour_after(middle)), None),
        "page: month mid (global), before": (AuditFilter(since=middle, until=month_after(middle)), head // 2 + 500),
        "page: since late (global)": (AuditFilter(since=late), None),
        "page: until early (global)": (AuditFilter(until=early), None),
        "page: actor owner1": (AuditFilter(actor="owner1"), None),
        "page: actor dev1": (AuditFilter(actor="dev1"), None),
        "page: actor owner1 + month mid": (AuditFilter(actor="owner1", since=middle, until=month_after(middle)), None),
        "page: configuration": (AuditFilter(configuration_id=configuration), None),
        "page: deployment": (AuditFilter(deployment_id="00000000-0000-0000-0000-000000000000"), None),
        "page: stage ids": (AuditFilter(stage_ids=("s1", "s2")), None),
        "page: stage name": (AuditFilter(stage="prod"), None),
        "page: type Service.Registered": (AuditFilter(event_type="Service.Registered"), None),
        "page: type prefix Service.": (AuditFilter(event_type="Service."), None),
        "page: type NameClaim. (system)": (AuditFilter(event_type="NameClaim."), None),
        "page: type Configuration.Revised": (AuditFilter(event_type="Configuration.Revised"), None),
        "page: include_system": (AuditFilter(include_system=True), None),
    }
    found: dict[str, Query] = {}
    for label, (filters, before) in pages.items():
        found[label] = sql_of(partial(AuditQueries.page, filters=filters, before=before, limit=100))
    found["stream: service (small)"] = sql_of(lambda audit: audit.stream(AuditFilter(service_id=small)))
    found["stream: month mid"] = sql_of(
        lambda audit: audit.stream(AuditFilter(since=middle, until=month_after(middle)))
    )
    found["stream: month early"] = sql_of(
        lambda audit: audit.stream(AuditFilter(since=early, until=month_after(early)))
    )
    found["history (big)"] = sql_of(lambda audit: audit.history(big))
    for version, at in zip((2, 2500, 4990), versions, strict=True):
        found[f"as_of v{version} (big)"] = sql_of(
            partial(AuditQueries.configuration_version_at, configuration_id=big, when=at)
        )
    found["aggregate_version_at early"] = sql_of(lambda audit: audit.aggregate_version_at(big, versions[0]))
    found["aggregate_version_at mid"] = sql_of(lambda audit: audit.aggregate_version_at(big, versions[1]))
    found["services_known_at mid"] = sql_of(lambda audit: audit.services_known_at(middle))
    found["chain head (audit.py)"] = (HEAD_QUERY, ())
    siem = f"SELECT {AUDIT_FIELDS} FROM sk_audit WHERE position > %s ORDER BY position LIMIT %s"  # noqa: S608
    found["siem: after a position (siem.py)"] = (siem, (head - head // 10, 500))
    return found


def nodes(plan: dict[str, Any]) -> list[str]:
    name = str(plan["Node Type"]) + (f"[{plan['Index Name']}]" if "Index Name" in plan else "")
    return [name] + [node for child in plan.get("Plans", []) for node in nodes(child)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", required=True)
    parser.add_argument("--verbose", action="store_true", help="also print each whole plan")
    parser.add_argument("labels", nargs="*", help="only the queries whose label contains one of these")
    args = parser.parse_args()
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute(f"SET search_path = {args.schema}")
        for label, (sql, params) in cases(conn).items():
            if args.labels and not any(part in label for part in args.labels):
                continue
            times, plan = [], {}
            for _ in range(3):
                row = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchone()
                assert row is not None
                plan = row[0][0]
                times.append(float(plan["Execution Time"]))
            print(f"{label:36} {statistics.median(times):8.3f} ms  {' > '.join(nodes(plan['Plan']))}")
            if args.verbose:
                for (line,) in conn.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params):
                    print("   ", line)


if __name__ == "__main__":
    main()
