"""Resources: allocated and used resources per service and stage, stage quotas, and disk use per
datastore, as server-drawn SVG charts with the same numbers in tables (api/usage.py documents)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api import usage
from api.access import read_service, readable_service_ids
from api.ui.charts import Line, line_chart
from api.ui.context import ConsoleRoute, RuntimeDep, SessionDep, render
from domain.errors import ValidationError

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
RANGES = {"1": "24 hours", "7": "7 days", "30": "30 days"}


def _label(at: str) -> str:
    return at[:16].replace("T", " ")


def _allocated(points: list[dict[str, Any]], key: str) -> list[float | None]:
    return [p["allocated"][key] for p in points]


def _used(points: list[dict[str, Any]], key: str) -> list[float | None]:
    return [p["used"][key] if p["used"] else None for p in points]


def _service_charts(points: list[dict[str, Any]], labels: list[str]) -> list[Any]:
    allocated, used = "chart-allocated", "chart-used"
    return [
        line_chart("vCPUs allocated", "vCPUs", labels, [Line("allocated", allocated, _allocated(points, "vcpus"))]),
        line_chart(
            "Memory",
            "MiB",
            labels,
            [
                Line("allocated", allocated, _allocated(points, "memory_mib")),
                Line("used (guest)", used, _used(points, "memory_mib")),
            ],
        ),
        line_chart(
            "Disk",
            "GiB",
            labels,
            [
                Line("provisioned", allocated, _allocated(points, "disk_gib")),
                Line("committed", used, _used(points, "committed_gib")),
            ],
        ),
        line_chart("CPU used", "MHz", labels, [Line("used", used, _used(points, "cpu_mhz"))]),
    ]


def _percent(value: int, limit: int | None) -> int | None:
    return None if not limit else min(100, round(100 * value / limit))


@router.get("/resources")
def resources(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    service: str | None = Query(None),
    stage: str | None = Query(None),
    days: str = Query("1"),
) -> Response:
    """Stage totals with quotas; one service's usage charts; datastores."""
    who = session.principal
    if days not in RANGES:
        raise ValidationError("days must be 1, 7 or 30", field="days")
    totals = usage.stage_totals(runtime, who, None, None)
    for row in totals["stages"]:
        quota = row["quota"] or {}
        row["bars"] = {k: _percent(row["allocated"][k], quota.get(k)) for k in ("vcpus", "memory_mib", "disk_gib")}
    readable = readable_service_ids(runtime, who)
    services = [s for s in runtime.read_models.services() if readable is None or str(s["id"]) in readable]
    start = (runtime.clock.now() - timedelta(days=int(days))).isoformat()
    span = usage.window(runtime, start, None, None)
    chosen: dict[str, Any] | None = None
    charts: list[Any] = []
    if services:
        try:
            service_id = UUID(service) if service else UUID(str(services[0]["id"]))
        except ValueError:
            raise ValidationError("service must be a service id", field="service") from None
        found = read_service(runtime, who, service_id)
        document = usage.service_usage(runtime, found, stage or None, span, None)
        labels = [_label(p["at"]) for p in document["points"]]
        charts = _service_charts(document["points"], labels)
        chosen = {"id": str(found.id), "name": found.name, "stages": [s["name"] for s in found.stages], **document}
    stores = usage.datastore_usage(runtime, who, span)
    store_charts = []
    for store in stores["datastores"]:
        pts = store["points"]
        used = [None if p["capacity_gib"] is None else round(p["capacity_gib"] - p["free_gib"], 3) for p in pts]
        lines = [Line("capacity", "chart-capacity", [p["capacity_gib"] for p in pts]), Line("used", "chart-used", used)]
        store_charts.append(line_chart(f"Datastore {store['datastore']}", "GiB", [_label(p["at"]) for p in pts], lines))
    consumers = []
    for consumer in stores["consumers"]:
        known = [p["committed_gib"] for p in consumer["points"] if p["committed_gib"] is not None]
        consumers.append({**consumer, "latest": known[-1] if known else None, "peak": max(known, default=None)})
    context = {
        "title": "Resources", "nav": "resources", "totals": totals["stages"], "services": services,
        "chosen": chosen, "stage": stage or "", "days": days, "ranges": RANGES, "charts": charts,
        "store_charts": store_charts, "consumers": consumers, "resolution": stores["resolution"],
        "admin": who.is_admin,
    }  # fmt: skip
    return render(request, "resources.html", context)
