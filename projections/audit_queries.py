"""Queries over the audit read model (the audit log, and the configuration history it holds)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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


class AuditQueries:
    def __init__(self, store: ReadStore) -> None:
        self.store = store

    def page(self, filters: AuditFilter, before: int | None, limit: int) -> tuple[list[Row], int | None]:
        """Newest first; returns the entries and the cursor for the next (older) page."""
        clauses, params = filters.where()
        if before is not None:
            clauses.append("position < %s")
            params.append(before)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.store.query(
            f"SELECT {AUDIT_FIELDS} FROM sk_audit{where} ORDER BY position DESC LIMIT %s",  # noqa: S608
            (*params, limit + 1),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (int(rows[-1]["position"]) if more and rows else None)

    def stream(self, filters: AuditFilter) -> Iterator[Row]:
        """Oldest first, for exports of any size (server-side cursor on PostgreSQL)."""
        clauses, params = filters.where()
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return self.store.stream(
            f"SELECT {AUDIT_FIELDS} FROM sk_audit{where} ORDER BY position",  # noqa: S608
            params,
            batch=2000,
        )

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

    def services_known_at(self, when: str) -> list[str]:
        rows = self.store.query(
            "SELECT aggregate_id FROM sk_audit_subjects s WHERE kind = 'service' AND EXISTS "
            "(SELECT 1 FROM sk_audit a WHERE a.aggregate_id = s.aggregate_id AND a.at <= %s)",
            (when,),
        )
        return [str(r["aggregate_id"]) for r in rows]
