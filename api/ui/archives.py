"""Archives in the console: the catalogue (space per tier), one archive (its machines, files and
restores) with restore, hold, move; "Archive Now" from a deployment page posts here.

Each form goes through the API's permission checks (api/routes/archives.py, api/access.py) and
then the same command as the API route; the domain's refusals are shown as the API gives them.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.access import operate_deployment, operate_stage, read_deployment, readable_service_ids
from api.routes.archives import operate_archive, readable_archive, tier_usage
from api.routes.deployments import parse_id
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, SessionDep, redirect, render
from api.ui.forms import checked, optional, text
from domain.deployment import UNDEPLOYED

router = APIRouter(prefix="/ui/archives", route_class=ConsoleRoute, include_in_schema=False)
LISTED = 200


@router.get("")
def archives(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """The catalogue: every archive of the services the caller may read, newest first."""
    found = runtime.app.list_archives(readable_service_ids(runtime, session.principal), limit=LISTED)
    names = {str(s["id"]): s["name"] for s in runtime.read_models.services()}
    rows = [{**a.view(), "service_name": names.get(str(a.service_id), "?")} for a in found]
    context = {"title": "Archives", "nav": "archives", "rows": rows, "tiers": tier_usage(runtime),
               "truncated": len(rows) >= LISTED}  # fmt: skip
    return render(request, "archives.html", context)


@router.get("/{archive_id}")
def archive(request: Request, archive_id: UUID, runtime: RuntimeDep, session: SessionDep) -> Response:
    """One archive: machines as recorded, files with SHA-256 and tier, restores, and its actions."""
    found = readable_archive(runtime, session.principal, archive_id)
    service = runtime.app.service(found.service_id)
    context = {
        "title": f"Archive of {found.configuration_name} v{found.configuration_version}", "nav": "archives",
        "archive": found.view(), "stages": [s["name"] for s in service.stages], "tiers": runtime.app.archive_tiers,
        "service_name": service.name,
    }  # fmt: skip
    return render(request, "archive.html", context)


@router.post("")
async def archive_now(request: Request, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Archive Now (from a deployment page): operator of the deployment's stage."""
    form = await request.form()
    deployment_id = parse_id(text(form, "deployment_id"), "deployment_id")
    operate_deployment(runtime, session.principal, deployment_id, "archive")
    outcome = runtime.app.archive_now(deployment_id, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/archives/{outcome.value.id}")


@router.post("/{archive_id}/restore")
async def restore(request: Request, archive_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Restore as a new deployment of a stage (the API's rights: a swap's over a live deployment)."""
    form = await request.form()
    stage = text(form, "stage")
    found = readable_archive(runtime, session.principal, archive_id)
    service = runtime.app.service(found.service_id)
    operate_stage(runtime, session.principal, service, stage, "restore into")
    source = runtime.app.deployment(found.deployment_id)
    if source.state != UNDEPLOYED and service.stage(stage)["name"] == source.stage:
        read_deployment(runtime, session.principal, source.id)
        operate_deployment(runtime, session.principal, source.id, "swap")
    runtime.app.restore_archive(archive_id, stage, checked(form, "fence"), actor=session.user,
                                reason=optional(form, "reason"))  # fmt: skip
    return redirect(request, f"/ui/archives/{archive_id}#restores")


@router.post("/{archive_id}/hold")
async def hold(request: Request, archive_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Put on hold (`hold=on`) or lift the hold."""
    form = await request.form()
    operate_archive(
        runtime, session.principal, readable_archive(runtime, session.principal, archive_id), "hold archives of"
    )
    runtime.app.hold_archive(archive_id, checked(form, "hold"), actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/archives/{archive_id}")


@router.post("/{archive_id}/move")
async def move(request: Request, archive_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Move to another tier."""
    form = await request.form()
    operate_archive(
        runtime, session.principal, readable_archive(runtime, session.principal, archive_id), "move archives of"
    )
    runtime.app.move_archive(archive_id, text(form, "tier"), actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/archives/{archive_id}")
