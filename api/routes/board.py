"""The board (services x their stages, with the deployments in each, a page at a time) and stage inventory."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from adapters.runtime import Runtime
from api.access import read_service, readable_service_ids
from api.auth import Principal
from api.deps import MinPosition, PrincipalDep, RuntimeDep, parse_time
from api.responses import errors
from api.responses.deployments import Board, Inventory
from api.responses.rendered import RawJSON, rendered_board
from api.routing import OneHopRoute
from domain.errors import NotFoundError, ValidationError
from domain.values import normalise_key
from projections.queries import board_service

router = APIRouter(route_class=OneHopRoute, prefix="/api/v1", tags=["board"], responses=errors(401, 422, 503))


BOARD_LIMIT = 200  # services per page, at most
STAGE_LIMIT = 100  # deployments listed per stage, at most
ENTRIES = 500  # deployments listed per page, by default
ENTRIES_LIMIT = 5000  # deployments listed per page, at most


@router.get("/board", response_model=Board, responses=errors(403, 404))
def board(
    runtime: RuntimeDep,
    who: PrincipalDep,
    min_position: MinPosition = None,
    service: UUID | None = Query(None, description="Service id (default: every service you may read)"),
    stage: str | None = Query(None, max_length=200, description="Only this stage of each service (any case)"),
    q: str | None = Query(None, max_length=200, description="Only services whose name starts with this (any case)"),
    limit: int = Query(50, ge=1, le=BOARD_LIMIT, description="Services per page"),
    per_stage: int = Query(20, ge=0, le=STAGE_LIMIT, description="Deployments listed per stage (counts cover all)"),
    max_entries: int = Query(
        ENTRIES,
        ge=1,
        le=ENTRIES_LIMIT,
        description="Deployments listed per page: the page ends before the service that would pass it "
        "(at least one service a page; `next` goes on from there)",
    ),
    cursor: str | None = Query(None, max_length=1024, description="`next` of the previous page"),
    as_of: str | None = Query(None, description="ISO 8601 time: what every stage held then"),
) -> Board | Response:
    """The services you may read, in name order and a page at a time (`next`), with their stages:
    each stage's live deployments by state (`counts`), the first `per_stage` of them listed and how
    many more there are (now, or at `as_of`). A page holds at most `limit` services and lists at
    most `max_entries` deployments."""
    when = parse_time(as_of, "as_of")
    after = decode_board_cursor(cursor) if cursor is not None else None
    if service is not None:
        read_service(runtime, who, service)
    readable = readable_service_ids(runtime, who)
    only = str(service) if service is not None else None
    stage_name = (stage.strip() or None) if stage is not None else None
    if when is None:
        position = runtime.read_models.wait("deployments", min_position, runtime.settings.read_wait_seconds)
        services, following = runtime.read_models.board_page(
            readable, limit, after, only, stage_name, q.strip() if q else None, per_stage, max_entries, RawJSON
        )
        # The stored entries are what `Board` serves (tests/contract/test_deployment_views_property.py
        # holds them to it): written as they are, not parsed, validated and encoded again.
        now = {"services": services, "next": encode_board_cursor(following), "position": position, "as_of": None}
        return Response(rendered_board(now), media_type="application/json")
    document = board_document(runtime, who, min_position, service, as_of)
    ordered = sorted(document["services"], key=lambda s: (normalise_key(str(s["name"])), str(s["id"])))
    prefix = normalise_key(q.strip()) if q else ""
    chosen = [
        s
        for s in ordered
        if normalise_key(str(s["name"])).startswith(prefix)
        and (after is None or (normalise_key(str(s["name"])), str(s["id"])) > after)
    ]
    page: list[dict[str, Any]] = []
    listed = 0
    for s in chosen[:limit]:
        stages = [st for st in s["stages"] if stage_name is None or str(st["name"]).casefold() == stage_name.casefold()]
        entries = [e for st in stages for e in st["deployments"]]
        shown = board_service(s, [_bare(st) for st in stages], entries, per_stage)
        listed += sum(len(st["deployments"]) for st in shown["stages"])
        if page and listed > max_entries:
            break
        page.append(shown)
    last = page[-1] if len(chosen) > len(page) else None
    following = (normalise_key(str(last["name"])), str(last["id"])) if last is not None else None
    return Board.model_validate(
        {"services": page, "next": encode_board_cursor(following), "position": document["position"], "as_of": when}
    )


def _bare(stage: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stage.items() if k not in ("deployments", "count", "counts", "more")}


def encode_board_cursor(after: tuple[str, str] | None) -> str | None:
    """An opaque cursor: the (name key, id) of a page's last service, base64url of JSON."""
    if after is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(list(after)).encode()).decode().rstrip("=")


def decode_board_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name_key, service_id = json.loads(raw)
        if isinstance(name_key, str) and isinstance(service_id, str):
            return name_key, str(UUID(service_id))
    except (ValueError, TypeError, binascii.Error):
        pass
    raise ValidationError("cursor must be the `next` of a previous page", field="cursor")


def board_document(
    runtime: Runtime,
    who: Principal,
    min_position: int | None,
    service: UUID | None,
    as_of: str | None,
) -> dict[str, Any]:
    """The whole board (every readable service, every live deployment) as plain data: the web
    console filters and pages it (through its cache now), the API pages it at `as_of`."""
    when = parse_time(as_of, "as_of")
    if service is not None:
        read_service(runtime, who, service)
    readable = readable_service_ids(runtime, who)
    only = str(service) if service is not None else None
    position = runtime.read_models.wait(
        "deployments", min_position if when is None else runtime.app.head(), runtime.settings.read_wait_seconds
    )
    if when is None:
        services_now = [s for s in runtime.read_models.board(only) if readable is None or s["id"] in readable]
        return {"services": services_now, "position": position, "as_of": None}
    runtime.read_models.wait("audit", runtime.app.head(), runtime.settings.read_wait_seconds)
    # Each service's entries handed to it alone: every service scanning every entry was quadratic (2,000
    # services x 50,000 deployments: about a minute a board).
    held: dict[str, list[dict[str, Any]]] = {}
    for entry in runtime.read_models.board_entries_at(when, only):
        held.setdefault(str(entry["service_id"]), []).append(entry)
    services = []
    for service_id, version in runtime.audit.service_versions_at(when).items():
        if (readable is not None and service_id not in readable) or (only is not None and service_id != only):
            continue
        then = runtime.app.service(UUID(service_id), version=version)
        if then.retired:
            continue
        row = {"id": service_id, "name": then.name, "version": then.definition_version}
        services.append(board_service(row, then.stages, held.get(service_id, [])))
    services.sort(key=lambda s: str(s["name"]).casefold())
    return {"services": services, "position": position, "as_of": when}


@router.get("/inventory", response_model=Inventory, responses=errors(403, 404))
def inventory(
    runtime: RuntimeDep,
    who: PrincipalDep,
    service: UUID = Query(description="Service id"),
    stage: str | None = Query(None, description="Stage name (default: every stage)"),
    min_position: MinPosition = None,
) -> Inventory:
    """The machines living in a service's stages, with their VM, address and size."""
    read_service(runtime, who, service)
    position = runtime.read_models.wait("deployments", min_position, runtime.settings.read_wait_seconds)
    items = runtime.read_models.inventory(str(service), stage)
    if (
        stage is not None
        and not items
        and stage.casefold() not in {s["name"].casefold() for s in runtime.app.service(service).stages}
    ):
        raise NotFoundError(f"service has no stage '{stage}'", field="stage")
    return Inventory.model_validate({"items": items, "position": position})
