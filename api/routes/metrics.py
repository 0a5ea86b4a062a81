"""GET /metrics: Prometheus text format, for administrators and their tokens (a scrape job sends a
Bearer token). STAGEKEEPER_METRICS_ADDRESS also serves it without authentication on its own bind."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from adapters.metrics import CONTENT_TYPE
from api.access import require_admin
from api.deps import PrincipalDep, RuntimeDep
from api.responses import errors
from api.routing import OneHopRoute

router = APIRouter(route_class=OneHopRoute, tags=["system"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={**errors(401, 403, 503), 200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
def metrics(runtime: RuntimeDep, who: PrincipalDep) -> Response:
    """This process's metrics (commands, vCenter calls, read-model lag, process manager, streams)."""
    require_admin(who, "read metrics")
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE)
