"""Queries over the read models, and waiting for a read model to reach a position."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any
from uuid import UUID

from domain.errors import UnavailableError
from domain.values import normalise_key
from projections.base import from_json
from projections.store import ReadStore, Row


class ReadModels:
    def __init__(self, store: ReadStore, wake: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self._wake = wake

    def position(self, name: str) -> int:
        rows = self.store.query("SELECT position FROM sk_tracking WHERE name = %s", (name,))
        return int(rows[0]["position"]) if rows else 0

    def wait(self, name: str, min_position: int | None, timeout: float) -> int:
        """Block until read model `name` reflects `min_position`; 503 (UnavailableError) after `timeout`."""
        position = self.position(name)
        if min_position is None or position >= min_position:
            return position
        self._wake()
        deadline = time.monotonic() + timeout
        delay = 0.002
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            position = self.position(name)
            if position >= min_position:
                return position
        raise UnavailableError(
            f"the {name} read model is at position {position} and did not reach {min_position} "
            f"within {timeout:g}s; retry shortly",
            field="min_position",
        )

    # -- services ---------------------------------------------------------------------------------
    def services(self, include_retired: bool = False) -> list[Row]:
        where = "" if include_retired else " WHERE retired = %s"
        rows = self.store.query(
            "SELECT * FROM sk_services" + where + " ORDER BY name_key",  # noqa: S608
            () if include_retired else (False,),
        )
        return [_service(r) for r in rows]

    # -- configurations ------------------------------------------------------------------------------
    def configurations(self, service_id: str) -> list[Row]:
        return self.store.query("SELECT * FROM sk_configurations WHERE service_id = %s ORDER BY name", (service_id,))

    # -- deployments ----------------------------------------------------------------------------------
    def deployments(
        self,
        service_id: str | None = None,
        stage: str | None = None,
        state: str | None = None,
        configuration_id: str | None = None,
        limit: int = 500,
        service_ids: Collection[str] | None = None,
        after: tuple[str, str] | None = None,
        drifted: bool | None = None,
    ) -> list[Row]:
        """Newest first (requested_at, then id). `service_ids` restricts to a caller's readable
        services inside the query, so a limit never hides readable rows behind others; `after`
        is the (requested_at, id) of the previous page's last row (keyset paging)."""
        if service_ids is not None and not service_ids:
            return []
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("service_id", service_id),
            ("stage", stage),
            ("state", state),
            ("configuration_id", configuration_id),
        ):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if drifted is not None:
            clauses.append("drifted = %s")
            params.append(1 if drifted else 0)
        if service_ids is not None:
            clauses.append(f"service_id IN ({', '.join(['%s'] * len(service_ids))})")
            params.extend(sorted(service_ids))
        if after is not None:
            clauses.append("(requested_at < %s OR (requested_at = %s AND id < %s))")
            params.extend([after[0], after[0], after[1]])
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.store.query(
            "SELECT view, position FROM sk_deployments" + where + " ORDER BY requested_at DESC, id DESC LIMIT %s",  # noqa: S608
            (*params, limit),
        )
        return [_deployment(r) for r in rows]

    def deployed_ids(self) -> list[UUID]:
        """Every deployment at rest in the deployed state (what the drift check compares)."""
        rows = self.store.query("SELECT id FROM sk_deployments WHERE state = %s ORDER BY id", ("deployed",))
        return [UUID(str(r["id"])) for r in rows]

    def verifying_ids(self) -> list[UUID]:
        """Deployments whose verification still runs (the view's JSON says so; each is re-read)."""
        rows = self.store.query(
            "SELECT id FROM sk_deployments WHERE view LIKE %s ORDER BY id", ('%"state": "running"%',)
        )
        return [UUID(str(r["id"])) for r in rows]

    # -- grants -------------------------------------------------------------------------------------
    def grants_of(self, user: str, groups: frozenset[str]) -> list[Row]:
        """Every grant that applies to this user (directly or through one of the groups)."""
        # The same key as domain/permissions.py and the grants read model: one way to match a member.
        names = sorted({normalise_key(g) for g in groups})
        marks = ", ".join(["%s"] * len(names)) or "NULL"
        return self.store.query(
            f"SELECT * FROM sk_grants WHERE member_user = %s OR member_group IN ({marks}) "  # noqa: S608
            "ORDER BY service_id, role",
            (normalise_key(user), *names),
        )

    def readable_services(self, user: str, groups: frozenset[str]) -> set[str]:
        return {str(g["service_id"]) for g in self.grants_of(user, groups)}

    # -- board and inventory ------------------------------------------------------------------
    def board(self, service_id: str | None = None) -> list[Row]:
        """Every active service (or one), its stages in order, and the live deployments in each."""
        services = [s for s in self.services() if service_id is None or s["id"] == service_id]
        held = self.board_entries(service_id)
        return [board_service(service, service["stages"], held.get(str(service["id"]), [])) for service in services]

    def board_page(
        self,
        readable: Collection[str] | None,
        limit: int,
        after: tuple[str, str] | None = None,
        service_id: str | None = None,
        stage: str | None = None,
        prefix: str | None = None,
        per_stage: int = 20,
        max_entries: int | None = None,
        decode: Callable[[str], Any] = from_json,
    ) -> tuple[list[Row], tuple[str, str] | None]:
        """One page of the board now: at most `limit` active services in name order, after the
        (name key, id) `after`, among `readable` (None: every service; the filter is in the query,
        before the limit), optionally one service, names starting with `prefix` and one stage
        (case-insensitively). Each stage lists its first `per_stage` live deployments (board
        order) with its counts by state. With `max_entries`, the page also ends before the service
        whose listed deployments would take it past that many (a page holds at least one service),
        and the cursor follows its last service. Entries are the stored board entries through
        `decode` (the text itself, to serve it without parsing). Returns the services and the
        cursor of the next page."""
        if readable is not None and not readable:
            return [], None
        clauses: list[str] = ["retired = %s"]
        params: list[Any] = [False]
        if readable is not None:
            clauses.append(f"id IN ({', '.join(['%s'] * len(readable))})")
            params.extend(sorted(readable))
        if service_id is not None:
            clauses.append("id = %s")
            params.append(service_id)
        if prefix:
            escaped = normalise_key(prefix).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("name_key LIKE %s ESCAPE '\\'")
            params.append(escaped + "%")
        if after is not None:
            clauses.append("(name_key > %s OR (name_key = %s AND id > %s))")
            params.extend([after[0], after[0], after[1]])
        # The page's services (and the first of the next page) with their live deployments counted
        # by stage and state, in one statement: one row per (service, stage, state), or one
        # without counts for a service holding none.
        chosen = "SELECT * FROM sk_services WHERE " + " AND ".join(clauses) + " ORDER BY name_key, id LIMIT %s"  # noqa: S608
        one_stage = " AND LOWER(stage) = LOWER(%s)" if stage is not None else ""
        rows = self.store.query(
            f"SELECT s.*, c.stage AS tally_stage, c.state AS tally_state, c.n AS tally_n FROM ({chosen}) s "  # noqa: S608
            "LEFT JOIN (SELECT service_id, stage, state, COUNT(*) AS n FROM sk_deployments "
            f"WHERE state <> %s{one_stage} AND service_id IN (SELECT id FROM ({chosen}) p) "
            "GROUP BY service_id, stage, state) c ON c.service_id = s.id ORDER BY s.name_key, s.id",
            (
                *params,
                limit + 1,
                "undeployed",
                *([stage] if stage is not None else []),
                *params,
                limit + 1,
            ),
        )
        found: dict[str, Row] = {}
        counts: dict[tuple[str, str], dict[str, int]] = {}
        for row in rows:
            row_id = str(row["id"])
            if row_id not in found:
                found[row_id] = {k: v for k, v in row.items() if not k.startswith("tally_")}
            if row["tally_stage"] is not None:
                counts.setdefault((row_id, str(row["tally_stage"])), {})[str(row["tally_state"])] = int(row["tally_n"])
        ordered = list(found.values())
        services = [_service(r) for r in ordered[:limit]]
        more = len(ordered) > limit
        if stage is not None:
            services = [
                {**s, "stages": [st for st in s["stages"] if str(st["name"]).casefold() == stage.casefold()]}
                for s in services
            ]
        if not services:
            return [], None
        if max_entries is not None:
            kept = _within(services, counts, per_stage, max_entries)
            more = more or kept < len(services)
            services = services[:kept]
        last = services[-1]
        following = (str(last["name_key"]), str(last["id"])) if more else None
        scope, scope_params = _live_scope([str(s["id"]) for s in services], stage)
        # The board entry (the view without machines) is stored as such: no machines decoded.
        listed: dict[tuple[str, str], list[Any]] = {}
        for row in self.store.query(
            "SELECT service_id, stage, entry FROM (SELECT service_id, stage, entry, requested_at, id, "  # noqa: S608
            "ROW_NUMBER() OVER (PARTITION BY service_id, stage ORDER BY requested_at, id) AS rank "
            f"FROM sk_deployments WHERE {scope}) ranked WHERE rank <= %s ORDER BY requested_at, id",
            (*scope_params, per_stage),
        ):
            listed.setdefault((str(row["service_id"]), str(row["stage"])), []).append(decode(row["entry"]))
        page = [board_cells(s, s["stages"], listed, counts) for s in services]
        return page, following

    def board_entries(self, service_id: str | None = None) -> dict[str, list[Row]]:
        """The board entry of every live deployment (or one service's), by service id, in board
        order (requested_at, then id). Grouped once by service: matching every entry against every
        service grew as their product."""
        where, params = ("state <> %s", ["undeployed"])
        if service_id is not None:
            where, params = where + " AND service_id = %s", [*params, service_id]
        live = self.store.query(
            f"SELECT entry FROM sk_deployments WHERE {where} ORDER BY requested_at, id",  # noqa: S608
            params,
        )
        held: dict[str, list[Row]] = {}
        for row in live:
            entry = from_json(row["entry"])
            held.setdefault(str(entry["service_id"]), []).append(entry)
        return held

    def services_mark(self) -> tuple[int, int]:
        """Changes whenever what the board shows of services does: (rows, sum of their versions).

        A registration adds a row; a rename, a stage change or a retirement raises its service's
        version. Events that only touch a row's position (a deployment admitted or released, a
        pool created) leave it alone."""
        rows = self.store.query("SELECT COUNT(*) AS services, SUM(version) AS versions FROM sk_services")
        return (int(rows[0]["services"]), int(rows[0]["versions"] or 0)) if rows else (0, 0)

    def board_changes(self, after: int) -> list[Row]:
        """The board entry of every deployment written after position `after` (undeployed ones
        too: they leave the board)."""
        rows = self.store.query("SELECT entry FROM sk_deployments WHERE position > %s", (after,))
        return [from_json(row["entry"]) for row in rows]

    def board_entries_at(self, when: str, service_id: str | None = None) -> list[Row]:
        """The board entry of every deployment living at `when`, as it was then."""
        scope, params = ("", [when])
        if service_id is not None:
            scope, params = " AND service_id = %s", [when, service_id]
        latest = "SELECT deployment_id, MAX(position) AS position FROM sk_deployment_history WHERE at <= %s"
        sql = (
            f"SELECT h.entry FROM sk_deployment_history h JOIN ({latest}{scope} GROUP BY deployment_id) latest "  # noqa: S608
            "ON latest.deployment_id = h.deployment_id AND latest.position = h.position WHERE h.state <> 'undeployed'"
        )
        rows = self.store.query(sql, params)
        entries = [from_json(row["entry"]) for row in rows]
        return sorted(entries, key=lambda e: (e["requested_at"], e["id"]))

    def inventory(self, service_id: str, stage: str | None = None) -> list[Row]:
        """Machines of live deployments in a service's stages (one row per machine)."""
        clauses, params = ["service_id = %s", "state <> %s"], [service_id, "undeployed"]
        if stage is not None:
            clauses.append("LOWER(stage) = LOWER(%s)")
            params.append(stage)
        rows = self.store.query(
            "SELECT view FROM sk_deployments WHERE " + " AND ".join(clauses) + " ORDER BY stage, requested_at",  # noqa: S608
            params,
        )
        return [
            {
                "stage": view["stage"],
                "deployment_id": view["id"],
                "deployment_state": view["state"],
                "configuration_name": view["configuration_name"],
                "configuration_version": view["configuration_version"],
                **machine,
            }
            for view in (from_json(row["view"]) for row in rows)
            for machine in view["machines"]
        ]


def board_service(
    service: Row,
    stages: list[dict[str, Any]],
    entries: list[Row],
    per_stage: int | None = None,
    counts: dict[tuple[str, str], dict[str, int]] | None = None,
) -> Row:
    """One service on the board: its stages in order, each with the deployments it holds (the
    first `per_stage` of them, when bounded), how many it holds by state, and how many are not
    listed. `counts` (service id, stage) -> state -> n is given when `entries` are already bounded;
    otherwise the entries are counted."""
    listed: dict[tuple[str, str], list[Any]] = {}
    for entry in entries:
        if entry["service_id"] == service["id"]:
            listed.setdefault((str(service["id"]), str(entry["stage"])), []).append(entry)
    if counts is None:
        counts = {key: dict(Counter(str(e["state"]) for e in cell)) for key, cell in listed.items()}
    if per_stage is not None:
        listed = {key: cell[:per_stage] for key, cell in listed.items()}
    return board_cells(service, stages, listed, counts)


def board_cells(
    service: Row,
    stages: list[dict[str, Any]],
    listed: dict[tuple[str, str], list[Any]],
    counts: dict[tuple[str, str], dict[str, int]],
) -> Row:
    """One service on the board from its listed entries and its counts by (service id, stage)."""
    cells = []
    for stage in stages:
        key = (str(service["id"]), str(stage["name"]))
        shown = listed.get(key, [])
        tally = counts.get(key, {})
        total = sum(tally.values())
        cells.append({**stage, "deployments": shown, "count": total, "counts": tally, "more": total - len(shown)})
    return {"id": service["id"], "name": service["name"], "version": service["version"], "stages": cells}


def _live_scope(service_ids: list[str], stage: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause of these services' live deployments (one stage, any case)."""
    scope = [f"service_id IN ({', '.join(['%s'] * len(service_ids))})", "state <> %s"]
    params: list[Any] = [*service_ids, "undeployed"]
    if stage is not None:
        scope.append("LOWER(stage) = LOWER(%s)")
        params.append(stage)
    return " AND ".join(scope), params


def _within(
    services: list[Row], counts: dict[tuple[str, str], dict[str, int]], per_stage: int, max_entries: int
) -> int:
    """How many of these services fit a page listing at most `max_entries` deployments (at least one)."""
    total = 0
    for n, service in enumerate(services):
        total += sum(
            min(per_stage, sum(counts.get((str(service["id"]), str(st["name"])), {}).values()))
            for st in service["stages"]
        )
        if total > max_entries and n > 0:
            return n
    return len(services)


def _service(row: Row) -> Row:
    return {**row, "stages": from_json(row["stages"]), "retired": bool(row["retired"])}


def _deployment(row: Row) -> Row:
    return {**from_json(row["view"]), "position": row["position"]}
