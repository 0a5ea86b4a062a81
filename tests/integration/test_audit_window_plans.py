"""PostgreSQL: a time window over the whole audit log reads its own rows, not the log after it (a page,
newest first) or before it (an export, oldest first): counted in the rows the plan's scans read, on an
audit log of 60,000 rows with late ones among them, 1 % and 10 % (projections/audit_queries.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from projections.audit import AuditProjection
from projections.audit_queries import LATE_ENOUGH, AuditFilter, AuditQueries
from scripts.bench.audit_plans import sql_of
from tests.support import POSTGRES_CONNINFO, postgres_schema, runtime_for

ROWS = 60_000
# A row every 525 s: 60,000 rows make a year. Every LATE-th is late (its time three hours back).
TIME = "to_char(TIMESTAMP '2025-01-01' + (position * 525 - CASE WHEN position % {late} = 0 THEN 10800 ELSE 0 END) "
TIME += "* INTERVAL '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


@pytest.fixture(scope="module", params=[97, 10])
def conn(request: pytest.FixtureRequest) -> Iterator[psycopg.Connection[Any]]:
    with postgres_schema() as url, psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as conn:
        conn.execute(f"SET search_path = {url.rsplit('schema=', 1)[1]}")
        for ddl in AuditProjection.ddl:
            conn.execute(ddl)
        conn.execute(
            f"INSERT INTO sk_audit (position, at, actor, aggregate_id, aggregate_version, event_type, summary, hash) "  # noqa: S608
            f"SELECT position, {TIME.format(late=request.param)}, 'ann', 'a' || position, 1, "
            "CASE WHEN position % 5 = 0 THEN 'NameClaim.Claimed' ELSE 'Probe.Ping' END, 'x', 'h' "
            f"FROM generate_series(1, {ROWS}) AS position"
        )
        conn.execute(
            "INSERT INTO sk_audit_late (at, position, top) SELECT at, position, top FROM (SELECT at, position, "
            "max(at) OVER (ORDER BY position ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS top "
            "FROM sk_audit) AS running WHERE at < top"
        )
        conn.execute("ANALYZE sk_audit")
        conn.execute("ANALYZE sk_audit_late")
        yield conn


def rows_read(plan: dict[str, Any]) -> int:
    """The table and index rows the plan's scans went through: those they returned and those their
    filters refused, over every loop."""
    own = 0
    if "Relation Name" in plan or "Index Name" in plan:
        own = (int(plan["Actual Rows"]) + int(plan.get("Rows Removed by Filter", 0))) * int(plan["Actual Loops"])
    return own + sum(rows_read(child) for child in plan.get("Plans", []))


def explained(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> int:
    row = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchone()
    assert row is not None
    return rows_read(row[0][0]["Plan"])


def late_in(conn: psycopg.Connection[Any], filters: AuditFilter) -> int:
    """How many late rows the window holds: what it reads besides its own page and its edges."""
    row = conn.execute(
        "SELECT COUNT(*) FROM sk_audit_late WHERE at >= %s AND at < %s", (filters.since, filters.until)
    ).fetchone()
    assert row is not None
    return int(row[0])


def month(conn: psycopg.Connection[Any], share: float) -> AuditFilter:
    """A month's window starting at the row `share` of the way through the log."""
    position = int(ROWS * share)
    [(since, until)] = conn.execute(
        "SELECT a.at, b.at FROM sk_audit a, sk_audit b WHERE a.position = %s AND b.position = %s",
        (position, position + ROWS // 12),
    ).fetchall()
    return AuditFilter(since=since, until=until)


def plain(filters: AuditFilter, order: str, limit: int | None) -> tuple[str, tuple[Any, ...]]:
    """The same rows as one scan of the log, filtered (what the queries were before the late rows)."""
    clauses, params = filters.where()
    sql = f"SELECT position FROM sk_audit WHERE {' AND '.join(clauses)} ORDER BY position{order}"  # noqa: S608
    return (sql + " LIMIT %s", (*params, limit)) if limit is not None else (sql, tuple(params))


@pytest.mark.parametrize("share", [0.1, 0.5])
def test_a_month_s_page_reads_the_month_not_the_log_after_it(conn: psycopg.Connection[Any], share: float) -> None:
    filters = month(conn, share)
    sql, params = sql_of(lambda audit: AuditQueries.page(audit, filters, None, 100))
    answer = [r[0] for r in conn.execute(sql, params).fetchall()]
    old, old_params = plain(filters, " DESC", 101)
    assert answer == [r[0] for r in conn.execute(old, old_params).fetchall()]
    assert len(answer) == 101
    assert explained(conn, old, old_params) > ROWS * (1 - share) * 0.8  # the log after the month
    assert explained(conn, sql, params) < 300 + 2 * late_in(conn, filters)  # the page, the late rows, the edges


@pytest.mark.parametrize("share", [0.5, 0.85])
def test_a_month_s_export_reads_the_month_not_the_log_before_it(conn: psycopg.Connection[Any], share: float) -> None:
    filters = month(conn, share)
    sql, params = sql_of(lambda audit: audit.stream(filters))
    answer = [r[0] for r in conn.execute(sql, params).fetchall()]
    old, old_params = plain(filters, "", None)
    assert answer == [r[0] for r in conn.execute(old, old_params).fetchall()]
    assert explained(conn, sql, params) < ROWS // 12 + 300 + 2 * late_in(conn, filters)  # the month, its late rows


def test_a_window_of_few_rows_reads_them_not_the_log_before_it(conn: psycopg.Connection[Any]) -> None:
    [(since, until)] = conn.execute(
        "SELECT a.at, b.at FROM sk_audit a, sk_audit b WHERE a.position = 30000 AND b.position = 30020"
    ).fetchall()
    filters = AuditFilter(since=since, until=until)
    sql, params = sql_of(lambda audit: AuditQueries.page(audit, filters, None, 100))
    answer = [r[0] for r in conn.execute(sql, params).fetchall()]
    old, old_params = plain(filters, " DESC", 101)
    assert answer == [r[0] for r in conn.execute(old, old_params).fetchall()]
    assert 10 < len(answer) < 101
    assert explained(conn, sql, params) < 300 + 2 * late_in(conn, filters)


def test_a_clock_far_ahead_makes_windows_after_it_read_by_the_plain_scan() -> None:
    """One event from a writer whose clock is in the year 2999 makes every row after it late: a window there
    is read by the plain filtered scan (what it read before the late rows were kept), one before it in two
    parts; the same rows either way."""
    with postgres_schema() as url:
        runtime = runtime_for(url)
        try:
            spike = 2_000
            with runtime.store.transaction() as cursor:
                times = TIME.format(late=10**9).replace("%", "%%")  # (no row late but those after the spike)
                cursor.execute(
                    "INSERT INTO sk_audit (position, at, actor, aggregate_id, aggregate_version, event_type, summary, "  # noqa: S608
                    f"hash) SELECT position, CASE WHEN position = {spike} THEN '2999-01-01T00:00:00.000000+00:00' "
                    f"ELSE {times} END, 'ann', 'a' || position, 1, 'Probe.Ping', 'x', 'h' "
                    "FROM generate_series(1, 6000) AS position"
                )
                cursor.execute(
                    "INSERT INTO sk_audit_late (at, position, top) SELECT at, position, top FROM (SELECT at, "
                    "position, max(at) OVER (ORDER BY position ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
                    "AS top FROM sk_audit) AS running WHERE at < top"
                )
            audit = runtime.audit
            late = runtime.store.query("SELECT COUNT(*) AS n FROM sk_audit_late")[0]["n"]
            assert late == 6000 - spike >= LATE_ENOUGH
            at = {
                int(r["position"]): str(r["at"])
                for r in runtime.store.query(
                    "SELECT position, at FROM sk_audit WHERE position IN (500, 900, 3000, 4500)"
                )
            }
            for since, until, crowded in ((at[500], at[900], False), (at[3000], at[4500], True), (at[500], None, True)):
                filters = AuditFilter(since=since, until=until)
                assert audit._crowded(filters) is crowded
                old, old_params = plain(filters, " DESC", 101)
                expected = [int(r["position"]) for r in runtime.store.query(old, old_params)]
                rows, _ = audit.page(filters, None, 100)
                assert [int(r["position"]) for r in rows] == expected[:100]
                assert [int(r["position"]) for r in audit.stream(filters)] == _all(runtime, filters)
        finally:
            runtime.close()


def _all(runtime: Any, filters: AuditFilter) -> list[int]:
    sql, params = plain(filters, "", None)
    return [int(r["position"]) for r in runtime.store.query(sql, params)]
