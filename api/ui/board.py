"""The board: services down, stages across, the deployments in each cell; live, filtered, paged,
and at any past instant."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import RedirectResponse, Response

from adapters.runtime import Runtime
from api.auth import Principal
from api.routes.board import board_document
from api.ui.boardcache import BoardCache, plain
from api.ui.context import ConsoleRoute, RuntimeDep, SessionDep, console_of, render
from domain.deployment import STATES
from domain.errors import ValidationError
from projections.audit_queries import AuditFilter

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
root = APIRouter(include_in_schema=False)
SERVICES_PER_PAGE = 25
ROWS_PER_PAGE = 50


@root.get("/")
def home() -> Response:
    return RedirectResponse("/ui/", status_code=307)


@dataclass(frozen=True)
class BoardFilter:
    service: str = ""
    stage: str = ""
    state: str = ""
    owner: str = ""
    mine: bool = False
    view: str = "grid"
    page: int = 1
    as_of: str = ""

    def query(self, **changes: Any) -> str:
        values = {**self.__dict__, **changes}
        pairs = [(k, "1" if v is True else str(v)) for k, v in values.items() if v not in ("", False, None)]
        defaults = {("page", "1"), ("view", "grid")}
        return "&".join(f"{k}={_quote(v)}" for k, v in pairs if (k, v) not in defaults)

    def keeps(self, deployment: dict[str, Any], user: str) -> bool:
        if self.state and deployment.get("state") != self.state:
            return False
        owner = str(deployment.get("requested_by") or "")
        if self.mine and owner.casefold() != user.casefold():
            return False
        return not (self.owner and self.owner.casefold() not in owner.casefold())

    @property
    def narrows_deployments(self) -> bool:
        return bool(self.state or self.owner or self.mine)


def _quote(value: str) -> str:
    return quote(value, safe="")


def board_filter(
    service: str = Query("", max_length=200),
    stage: str = Query("", max_length=200),
    state: str = Query("", max_length=40),
    owner: str = Query("", max_length=200),
    mine: bool = Query(False),
    view: str = Query("grid", pattern="^(grid|list)$"),
    page: int = Query(1, ge=1, le=100_000),
    as_of: str = Query("", max_length=64),
) -> BoardFilter:
    if state and state not in STATES:
        raise ValidationError(f"state must be one of {', '.join(STATES)}", field="state")
    return BoardFilter(service.strip(), stage.strip(), state, owner.strip(), mine, view, page, as_of.strip())


def _as_of_iso(value: str) -> str | None:
    """The slider sends epoch seconds; the form's field may hold an ISO time."""
    if not value:
        return None
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC).isoformat()
    return value


def board_view(
    runtime: Runtime, who: Principal, filters: BoardFilter, min_position: int | None, cache: BoardCache | None = None
) -> dict[str, Any]:
    """The board document of the API (same code, same permissions), filtered and paged for a page."""
    # The API's own board: the same reads and the same permissions (now: shared while nothing moves).
    when = _as_of_iso(filters.as_of)
    if when is None and cache is not None:
        document = cache.now(runtime, who, min_position)
    else:
        document = plain(board_document(runtime=runtime, who=who, min_position=min_position, service=None, as_of=when))
    rows: list[dict[str, Any]] = []
    services = []
    for service in document["services"]:
        if filters.service and filters.service.casefold() not in str(service["name"]).casefold():
            continue
        stages = []
        for stage in service["stages"]:
            if filters.stage and filters.stage.casefold() not in str(stage["name"]).casefold():
                continue
            cards = []
            for raw in stage["deployments"]:
                card = {**raw, "id": raw.get("id") or raw.get("deployment_id")}
                if filters.keeps(card, who.user):
                    cards.append(card)
                    if filters.view == "list":
                        rows.append({**card, "service_name": service["name"], "service_id": service["id"]})
            stages.append({**stage, "deployments": cards})
        if filters.narrows_deployments and not any(s["deployments"] for s in stages):
            continue
        services.append({**service, "stages": stages})
    per_page = SERVICES_PER_PAGE if filters.view == "grid" else ROWS_PER_PAGE
    items: list[dict[str, Any]] = services if filters.view == "grid" else rows
    pages = max(1, math.ceil(len(items) / per_page))
    page = min(filters.page, pages)
    shown = items[(page - 1) * per_page : page * per_page]
    cards = [c for s in shown for st in s["stages"] for c in st["deployments"]] if filters.view == "grid" else shown
    key = "id" if filters.view == "grid" else "service_id"
    counts = machine_counts(runtime, {str(item[key]) for item in shown})
    for card in cards:
        card["machine_count"] = counts.get(str(card["id"]))
    return {
        "services": shown if filters.view == "grid" else [],
        "rows": shown if filters.view == "list" else [],
        "total": len(items),
        "page": page,
        "pages": pages,
        "position": document["position"],
        "as_of": document["as_of"],
        "filters": filters,
        "states": STATES,
    }


def machine_counts(runtime: Runtime, service_ids: set[str]) -> dict[str, int]:
    """Machines per deployment, for the services on the page only (one query, not the whole board)."""
    if not service_ids:
        return {}
    rows = runtime.read_models.deployments(service_ids=service_ids, limit=100_000)
    return {str(row["id"]): len(row["machines"]) for row in rows if row["state"] != "undeployed"}


def first_event_time(runtime: Runtime) -> datetime | None:
    # The entry at position 1 is the oldest: the slider's left end.
    rows, _ = runtime.audit.page(AuditFilter(), 2, 1)
    return datetime.fromisoformat(str(rows[0]["at"])) if rows else None


FilterDep = Annotated[BoardFilter, Depends(board_filter)]


@router.get("/")
def board_page(request: Request, runtime: RuntimeDep, session: SessionDep, filters: FilterDep) -> Response:
    board = board_view(runtime, session.principal, filters, None, console_of(request).boards)
    start = first_event_time(runtime)
    now = int(runtime.clock.now().timestamp()) + 60
    slider = {
        "min": int(start.timestamp()) if start else now - 3600,
        "max": now,
        "value": int(filters.as_of) if filters.as_of.isdigit() else now,
    }
    return render(request, "board.html", {"title": "Board", "nav": "board", "board": board, "slider": slider})


@router.get("/board")
def board_fragment(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    filters: FilterDep,
    min_position: int | None = Query(None, ge=0),
) -> Response:
    """The board's body alone, for live updates and the filters (read after `min_position`)."""
    board = board_view(runtime, session.principal, filters, min_position, console_of(request).boards)
    response = render(request, "fragments/board.html", {"board": board})
    if min_position is None and request.headers.get("hx-request"):
        # A change of filters: the address bar shows the page with them (reload, bookmark, share).
        response.headers["HX-Push-Url"] = "/ui/" + ("?" + filters.query() if filters.query() else "")
    return response
