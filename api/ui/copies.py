"""Copies & fences: every live fenced deployment and every copy, with the deployment it copies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.access import readable_service_ids
from api.ui.context import ConsoleRoute, RuntimeDep, SessionDep, render, wait_for

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
SCANNED = 2000  # newest deployments read for the page (a note says when there may be more)


@router.get("/copies")
def copies(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Fenced deployments (networks, VLANs, gateway) and copies (source, stage, clone kind)."""
    readable = readable_service_ids(runtime, session.principal)
    wait_for(runtime, "deployments", None)
    rows = runtime.read_models.deployments(limit=SCANNED, service_ids=readable)
    names = {str(s["id"]): s["name"] for s in runtime.read_models.services()}
    live = [r for r in rows if r["state"] != "undeployed"]
    by_id = {r["id"]: r for r in rows}
    listed: list[dict[str, Any]] = []
    for row in live:
        if not row.get("fence") and not row.get("copied_from"):
            continue
        source = (row.get("copied_from") or {}).get("deployment_id")
        listed.append({**row, "service_name": names.get(str(row["service_id"]), "?"), "source": by_id.get(source)})
    context = {
        "title": "Copies & fences", "nav": "copies", "rows": listed, "truncated": len(rows) >= SCANNED,
        "fenced": sum(1 for r in listed if r.get("fence")), "copied": sum(1 for r in listed if r.get("copied_from")),
    }  # fmt: skip
    return render(request, "copies.html", context)
