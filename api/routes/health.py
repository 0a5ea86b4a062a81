"""Liveness and worker health (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RuntimeDep
from api.responses.system import Health
from domain.errors import UnavailableError

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(runtime: RuntimeDep) -> Health:
    """Event store head, read-model positions and worker errors."""
    positions = runtime.projection_follower.positions()
    errors = {**runtime.projection_thread.errors, **runtime.process_thread.errors}
    directory = "not configured"
    if runtime.directory is not None:
        try:
            runtime.directory.check()
            directory = "ok"
        except UnavailableError as error:
            directory = "unreachable"
            errors["directory"] = error.message
    return Health.model_validate(
        {
            "status": "degraded" if errors else "ok",
            "head": runtime.app.head(),
            "read_models": positions,
            "process_manager": {
                "position": runtime.read_models.position(runtime.process_follower.name),
                "leader": runtime.process_thread.leader,
            },
            "vcenter_driver": runtime.vcenter.name,
            "directory": directory,
            "errors": errors,
        }
    )
