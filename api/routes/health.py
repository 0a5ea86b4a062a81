"""Liveness and worker health (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RuntimeDep
from api.responses.system import Health
from api.routing import OneHopRoute
from domain.errors import UnavailableError
from projections.quarantine import quarantined

router = APIRouter(route_class=OneHopRoute, tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(runtime: RuntimeDep) -> Health:
    """Event store head, read-model positions and worker errors."""
    positions = runtime.projection_follower.positions()
    errors = {**runtime.projection_thread.errors, **runtime.process_thread.errors, **runtime.usage.collector.errors}
    if runtime.drift_worker.error is not None:
        errors["drift"] = runtime.drift_worker.error
    directory = "not configured"
    if runtime.directory is not None:
        try:
            runtime.directory.check()
            directory = "ok"
        except UnavailableError as error:
            directory = "unreachable"
            errors["directory"] = error.message
    # Events a read model passed over (it goes on without them): an operator fixes the cause,
    # then `stagekeeper projections rebuild NAME`.
    passed_over = quarantined(runtime.store)
    warnings: dict[str, str] = {}
    waiting = runtime.leadership.waiting_seconds()
    if waiting is not None and waiting > runtime.settings.leadership_wait_warning_seconds:
        # Normal for a standby beside a live leader; a sign of trouble when nothing else should lead.
        warnings["process_manager"] = (
            f"waiting {waiting:.0f}s for the process manager's lock: another process on this database "
            "and schema leads (pg_stat_activity, application_name 'stagekeeper:process:deployments:pid=...')"
        )
    return Health.model_validate(
        {
            "status": "degraded" if errors or warnings or passed_over else "ok",
            "head": runtime.app.head(),
            "read_models": positions,
            "process_manager": {
                "position": runtime.read_models.position(runtime.process_follower.name),
                "leader": runtime.process_thread.leader,
                "waiting_for_leadership_seconds": None if waiting is None else round(waiting, 1),
            },
            "vcenter_driver": runtime.vcenter.name,
            "directory": directory,
            "errors": errors,
            "warnings": warnings,
            "quarantined": passed_over,
        }
    )
