"""Media and Storage pages: the ISO library (list, upload, delete) and the linked-clone tree.

The upload form sends the file as the request body (static/media.js), to a console route that
streams it exactly as the API does: a browser's multipart form would have the server spool it.
"""

from __future__ import annotations

import hmac
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from api.access import read_service, readable_service_ids
from api.errors import error_body, status_of
from api.routes.media import all_configurations, live_deployments, may_curate, streamed_upload
from api.routes.storage import visible_nodes
from api.ui.context import (
    CheckedDep,
    ConsoleRoute,
    CsrfError,
    RuntimeDep,
    SessionDep,
    redirect,
    refused,
    render,
    wait_for,
)
from api.ui.forms import optional
from domain.errors import ConflictError, NotFoundError, PermissionDeniedError, StagekeeperError
from domain.media import MAX_MEDIUM_NAME
from domain.text import MAX_REASON
from projections.media import list_media

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
SMALL_FORM = 65536  # a form post to the upload route read for its token (a file is never a form)


def _library(request: Request, runtime: RuntimeDep, session: SessionDep, at: int | None, error: str | None) -> Response:
    position = wait_for(runtime, "media", at)
    who = session.principal
    items = list_media(runtime.store)
    context = {
        "title": "Media", "nav": "media", "items": items, "position": position, "error": error,
        "may_upload": may_curate(runtime, who), "user": who.user, "is_admin": who.is_admin,
        "max_bytes": runtime.settings.media_max_bytes, "max_name": MAX_MEDIUM_NAME,
        "datastore": f"[{runtime.settings.media_datastore}] in {runtime.settings.media_datacenter}",
    }  # fmt: skip
    return render(request, "media.html", context, 409 if error else 200)


@router.get("/media")
def media_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, at: int | None = Query(None, ge=0)
) -> Response:
    return _library(request, runtime, session, at, None)


@router.post("/media/upload")
async def upload(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    name: str = Query(..., max_length=MAX_MEDIUM_NAME),
    reason: str | None = Query(None, max_length=MAX_REASON),
) -> Response:
    """The upload form's target (static/media.js): the body is the file; the token is a header."""
    token = request.headers.get("x-csrf-token")
    length = request.headers.get("content-length") or ""
    is_form = (request.headers.get("content-type") or "").startswith("application/x-www-form-urlencoded")
    if token is None and is_form and length.isdigit() and int(length) <= SMALL_FORM:
        # A plain form post (no script): its token is read, and the upload refused as not an ISO.
        token = str((await request.form()).get("csrf") or "")
    if not hmac.compare_digest(token or "", session.csrf):
        raise CsrfError("this form is missing its security token or it has expired: reload the page and retry")
    try:
        answer = await streamed_upload(request, runtime, session.principal, name, reason)
    except StagekeeperError as error:
        refused(request, error)
        return JSONResponse(error_body(error.code, error.message, error.field), status_of(error))
    if isinstance(answer, Response):
        return answer
    return JSONResponse({"id": str(answer.id), "position": answer.position, "name": answer.name}, 201)


@router.post("/media/{medium_id}/delete")
async def delete(request: Request, medium_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    form = await request.form()
    who = session.principal
    medium = runtime.app.medium(medium_id)
    if not (who.is_admin or (medium.uploaded_by == who.user and may_curate(runtime, who))):
        raise PermissionDeniedError(f"{who.user} may not delete medium {medium_id}: administrators and its uploader")
    try:
        outcome = runtime.app.delete_medium(
            medium_id, all_configurations(runtime), live_deployments(runtime), actor=who.user,
            reason=optional(form, "reason"),
        )  # fmt: skip
    except (ConflictError, NotFoundError) as error:
        refused(request, error)
        return _library(request, runtime, session, None, error.message)
    return redirect(request, f"/ui/media?at={outcome.position}")


@router.get("/storage")
def storage_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, service: UUID | None = Query(None)
) -> Response:
    """The dependency tree as nested lists, and the same nodes in a table."""
    who = session.principal
    if service is not None:
        read_service(runtime, who, service)
    readable = readable_service_ids(runtime, who)
    roots = runtime.app.storage_tree(live_deployments(runtime, str(service) if service is not None else None))
    if service is not None:
        roots, _ = visible_nodes(roots, {str(service)})
    roots, hidden = visible_nodes(roots, readable)
    services = [s for s in runtime.read_models.services() if readable is None or s["id"] in readable]
    context = {
        "title": "Storage", "nav": "storage", "roots": roots, "rows": [r for root in roots for r in root.flatten()],
        "hidden": hidden, "services": services, "service": str(service) if service else "",
        "names": {str(s["id"]): s["name"] for s in services},
    }  # fmt: skip
    return render(request, "storage.html", context)
