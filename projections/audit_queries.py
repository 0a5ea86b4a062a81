"""Queries over the audit read model (the audit log, and the configuration history it holds).

A time window over the log. Pages are newest first by position and exports oldest first, but a window
is a range of `at`, and `at` is not quite monotonic in position (projections/audit.py, "late rows").
Filtering the primary key's scan by `at` read every row after the window (a page) or before it (an
export): 240-320 ms for a month half-way through 1,000,000 events. A window [since, until) is read
instead as two parts, whose union is exactly its rows:

- the rows at positions lo..hi, where lo is the first row in the window that is not late, and hi the
  last (each found on sk_audit_at inside the window, passing over its late rows);
- the late rows in the window (sk_audit_late, by its key's range of `at`) at a position outside lo..hi.

Why that is every row of the window and nothing else, each once: the rows that are not late have `at`
non-decreasing in position, so those in the window are consecutive among them, the first in the
window to the last: all at positions lo..hi. Every other row of the window is
late, and is in the first part if its position is in lo..hi, in the second if not. Both parts test the
window (the first on sk_audit's `at`, the second on sk_audit_late's, the same text written with the
row) and every other filter, so rows of lo..hi outside the window (late ones) and rows other filters
refuse stay out; the parts are disjoint (inside lo..hi and outside it). No row in the window that is
not late: the range is empty (lo past every position, hi before every one) and every row of the window
is in the late part. Then the union's ORDER BY position and LIMIT (and `before`, in both parts) make the
same page, cursor and export as one filtered scan. What a window reads is its own rows (a page: as
far as its LIMIT) and its late rows, twice at most: not the log after or before it
(tests/contract/test_audit_window.py for the answers, tests/integration/test_audit_window_plans.py for
the rows PostgreSQL reads). A window with `LATE_ENOUGH` late rows or more (a writer's clock far ahead
makes every row after its event late until real time passes it) is read by the plain filtered scan
instead: a look-up per late row would cost more than that scan (`AuditQueries._crowded`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from projections.store import ReadStore, Row

AUDIT_FIELDS = (
    "position, at, actor, reason, service_id, stage, from_stage, stage_id, from_stage_id, configuration_id, "
    "deployment_id, "
    "aggregate_id, aggregate_version, event_type, summary, hash"
)


# Bookkeeping aggregates with no actor and no service (name and address claims): a fifth of the
# newest rows, noise to a reader. The default view leaves them out; `include_system` or a `type`
# naming them shows them (the hash chain covers them either way).
SYSTEM_TYPES = ("NameClaim.",)

# A configuration's events (an aggregate's id is its alone: this only keeps another aggregate's id from
# reading as a configuration's). A LIKE prefix, not a function of the column: PostgreSQL estimates it
# from the column's statistics.
_CONFIGURATION_TYPES = "Configuration.%"


@dataclass(frozen=True)
class AuditFilter:
    service_id: str | None = None
    stage: str | None = None  # a stage name as it was at the time (stages without an id today)
    stage_ids: tuple[str, ...] | None = None  # stable stage ids (a stage by id, or a name resolved to ids)
    configuration_id: str | None = None
    deployment_id: str | None = None
    actor: str | None = None
    event_type: str | None = None  # exact ("Deployment.Moved") or a prefix ending in "." ("Deployment.")
    since: str | None = None  # fixed-width ISO UTC, inclusive
    until: str | None = None  # exclusive
    service_ids: tuple[str, ...] | None = None  # restrict to these services (a caller's readable ones)
    include_system: bool = False  # also the SYSTEM_TYPES rows

    @property
    def shows_system(self) -> bool:
        asked = self.event_type is not None and self.event_type.startswith(SYSTEM_TYPES)
        return self.include_system or asked

    def where(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("service_id", self.service_id),
            ("configuration_id", self.configuration_id),
            ("deployment_id", self.deployment_id),
            ("actor", self.actor),
        ):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if self.service_ids is not None:
            if self.service_ids:
                clauses.append(f"service_id IN ({', '.join(['%s'] * len(self.service_ids))})")
                params.extend(self.service_ids)
            else:
                clauses.append("1 = 0")
        if self.stage_ids is not None:
            marks = ", ".join(["%s"] * len(self.stage_ids)) or "NULL"
            clauses.append(f"(stage_id IN ({marks}) OR from_stage_id IN ({marks}))")
            params += [*self.stage_ids, *self.stage_ids]
        elif self.stage is not None:
            clauses.append("(stage = %s OR from_stage = %s)")
            params += [self.stage, self.stage]
        if self.event_type is not None:
            if self.event_type.endswith("."):
                clauses.append("event_type LIKE %s")
                params.append(self.event_type.replace("%", "").replace("_", r"\_") + "%")
            else:
                clauses.append("event_type = %s")
                params.append(self.event_type)
        if not self.shows_system:
            for prefix in SYSTEM_TYPES:
                clauses.append("event_type NOT LIKE %s")
                params.append(prefix + "%")
        if self.since is not None:
            clauses.append("at >= %s")
            params.append(self.since)
        if self.until is not None:
            clauses.append("at < %s")
            params.append(self.until)
        return clauses, params


# Late rows in a window from which its plain filtered scan is read instead of its two parts (`_crowded`).
LATE_ENOUGH = 1000
# Past every position (a window with no row that is not late: lo..hi is empty).
_NO_POSITION = 9_223_372_036_854_775_807
# Whether an sk_audit row `a` is not late (projections/audit.py): its key is not in sk_audit_late. A count,
# not NOT EXISTS: PostgreSQL turns NOT EXISTS into an anti-join, which it planned as a sort of every late
# row merged with the scan; this stays a key lookup per row scanned (few: the scan stops at the first
# row that is not late).
_NOT_LATE = "(SELECT COUNT(*) FROM sk_audit_late l WHERE l.at = a.at AND l.position = a.position) = 0"


def _selected(
    filters: AuditFilter, before: int | None, order: str, limit: int | None, dialect: str, plain: bool = False
) -> tuple[str, list[Any]]:
    """The audit rows the filters select, in position order `order` ("" or " DESC"), at most `limit`: one
    filtered scan (`plain`, or without a time window), or, with a time window, its two parts (the module doc)."""
    clauses, params = filters.where()
    # The late part's other filters: its rows' times are tested in sk_audit_late (the same text, written
    # with the row), so the planner has no time condition on sk_audit to scan sk_audit_at by.
    others, other_params = replace(filters, since=None, until=None).where()
    if before is not None:
        clauses.append("position < %s")
        others.append("position < %s")
        params.append(before)
        other_params.append(before)
    first = "" if limit is None else " LIMIT %s"
    most = [] if limit is None else [limit]
    if plain or (filters.since is None and filters.until is None):
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return f"SELECT {AUDIT_FIELDS} FROM sk_audit{where} ORDER BY position{order}{first}", [*params, *most]  # noqa: S608
    bounds: list[str] = []
    inside: list[str] = []  # a position in lo..hi
    window: list[str] = []  # a late row's time in the window
    # Each edge's walk stays inside the window: a window with no row that is not late has an empty range
    # (its rows are all in the late part), so the walk passes over the window's late rows at most.
    window_sql = " AND ".join(
        condition for condition, value in (("a.at >= %s", filters.since), ("a.at < %s", filters.until)) if value
    )
    times = [value for value in (filters.since, filters.until) if value is not None]
    if filters.since is not None:
        bounds.append(
            f"COALESCE((SELECT a.position FROM sk_audit a WHERE {window_sql} AND {_NOT_LATE} "  # noqa: S608
            f"ORDER BY a.at, a.position LIMIT 1), {_NO_POSITION}) AS lo"
        )
        inside.append("position >= (SELECT lo FROM bounds)")
        window.append("at >= %s")
    if filters.until is not None:
        bounds.append(
            f"COALESCE((SELECT a.position FROM sk_audit a WHERE {window_sql} AND {_NOT_LATE} "  # noqa: S608
            "ORDER BY a.at DESC, a.position DESC LIMIT 1), 0) AS hi"
        )
        inside.append("position <= (SELECT hi FROM bounds)")
        window.append("at < %s")
    edges = times * len(bounds)
    outside = " OR ".join(f"NOT {condition}" for condition in inside)
    late = f"SELECT position FROM sk_audit_late WHERE {' AND '.join(window)} AND ({outside})"  # noqa: S608
    # Each late row read by its key. PostgreSQL: an array (computed once) the primary key's scan looks up;
    # as `IN (...)` it planned a semi-join with a scan of the whole key in position order, stopped by the
    # page's LIMIT no sooner than the log's far end when the late rows are many (10 %: 50,000 of 60,000
    # rows read for a page). SQLite looks each one up.
    late = f"position = ANY(ARRAY({late}))" if dialect == "postgres" else f"position IN ({late})"
    late += "".join(f" AND {clause}" for clause in others)
    # Each part ordered (and limited) on its own: the range's part is then a scan of the primary key (or of
    # a filter's (column, position) index) in position order that stops at `limit` rows, whatever the
    # planner guesses of the range's size (it cannot know lo and hi when it plans).
    sql = (
        f"WITH bounds AS (SELECT {', '.join(bounds)}) "  # noqa: S608
        f"SELECT * FROM (SELECT {AUDIT_FIELDS} FROM sk_audit WHERE {' AND '.join(inside + clauses)} "
        f"ORDER BY position{order}{first}) AS ranged "
        f"UNION ALL SELECT * FROM (SELECT {AUDIT_FIELDS} FROM sk_audit WHERE {late} "
        f"ORDER BY position{order}{first}) AS late "
        f"ORDER BY position{order}{first}"
    )
    return sql, [*edges, *params, *most, *times, *other_params, *most, *most]


class AuditQueries:
    def __init__(self, store: ReadStore) -> None:
        self.store = store

    def _crowded(self, filters: AuditFilter) -> bool:
        """Whether the window holds `LATE_ENOUGH` late rows or more (read on sk_audit_late's key, at most that
        many): a clock far ahead on one writer makes every row after its event late until real time passes
        it, and the two parts of such a window would cost a look-up per row; the plain filtered scan is then
        read instead (what it cost before the late rows were kept: the rows after or before the window)."""
        clauses = [c for c, v in (("at >= %s", filters.since), ("at < %s", filters.until)) if v is not None]
        if not clauses:
            return False
        times = [v for v in (filters.since, filters.until) if v is not None]
        rows = self.store.query(
            f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM sk_audit_late WHERE {' AND '.join(clauses)} "  # noqa: S608
            "LIMIT %s) AS late",
            (*times, LATE_ENOUGH),
        )
        return bool(rows) and int(rows[0]["n"]) >= LATE_ENOUGH

    def page(self, filters: AuditFilter, before: int | None, limit: int) -> tuple[list[Row], int | None]:
        """Newest first; returns the entries and the cursor for the next (older) page."""
        sql, params = _selected(filters, before, " DESC", limit + 1, self.store.dialect, self._crowded(filters))
        rows = self.store.query(sql, params)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (int(rows[-1]["position"]) if more and rows else None)

    def stream(self, filters: AuditFilter) -> Iterator[Row]:
        """Oldest first, for exports of any size (server-side cursor on PostgreSQL)."""
        sql, params = _selected(filters, None, "", None, self.store.dialect, self._crowded(filters))
        return self.store.stream(sql, params, batch=2000)

    # A configuration's history is its events' audit rows (the audit log has a row for every event, with
    # the aggregate's id and version): read on sk_audit_aggregate (an as_of early in a long history on
    # sk_audit_at, as `aggregate_version_at`); the configuration_history read model that held a copy is gone.
    def history(self, configuration_id: str) -> list[Row]:
        """Every version of a configuration, oldest first: when, who, why, what."""
        return self.store.query(
            "SELECT aggregate_version AS version, at, actor, reason, event_type, summary, position FROM sk_audit "
            "WHERE aggregate_id = %s AND event_type LIKE %s ORDER BY aggregate_version",
            (configuration_id, _CONFIGURATION_TYPES),
        )

    def configuration_version_at(self, configuration_id: str, when: str) -> int | None:
        """The highest version of a configuration recorded at or before `when` (None: none was)."""
        rows = self.store.query(
            "SELECT aggregate_version AS version FROM sk_audit WHERE aggregate_id = %s AND event_type LIKE %s "
            "AND at <= %s ORDER BY aggregate_version DESC LIMIT 1",
            (configuration_id, _CONFIGURATION_TYPES, when),
        )
        return int(rows[0]["version"]) if rows else None

    def aggregate_version_at(self, aggregate_id: str, when: str) -> int | None:
        rows = self.store.query(
            "SELECT MAX(aggregate_version) AS version FROM sk_audit WHERE aggregate_id = %s AND at <= %s",
            (aggregate_id, when),
        )
        return int(rows[0]["version"]) if rows and rows[0]["version"] is not None else None

    def service_versions_at(self, when: str) -> dict[str, int]:
        """Every service known at `when` and its version then (`aggregate_version_at` of each, in one
        statement: each service's rows read on sk_audit_aggregate, a few index entries a service)."""
        rows = self.store.query(
            "SELECT s.aggregate_id, (SELECT MAX(a.aggregate_version) FROM sk_audit a WHERE "
            "a.aggregate_id = s.aggregate_id AND a.at <= %s) AS version FROM sk_audit_subjects s "
            "WHERE s.kind = 'service'",
            (when,),
        )
        return {str(r["aggregate_id"]): int(r["version"]) for r in rows if r["version"] is not None}

    def services_known_at(self, when: str) -> list[str]:
        rows = self.store.query(
            "SELECT aggregate_id FROM sk_audit_subjects s WHERE kind = 'service' AND EXISTS "
            "(SELECT 1 FROM sk_audit a WHERE a.aggregate_id = s.aggregate_id AND a.at <= %s)",
            (when,),
        )
        return [str(r["aggregate_id"]) for r in rows]
