"""The media library: ISO images streamed to the media datastore, shared by every service.

The upload's body is the file itself (not JSON), read a chunk at a time and passed on to vCenter's
datastore file access as it arrives: it is never held in memory nor spooled to disk, and it is
bounded by STAGEKEEPER_MEDIA_MAX_BYTES (not STAGEKEEPER_MAX_BODY_BYTES: api/limits.py lets it through).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from functools import partial
from typing import Any
from uuid import UUID

import anyio.to_thread
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from adapters.runtime import Runtime
from api.auth import Principal
from api.deps import MinPosition, PrincipalDep, RuntimeDep
from api.errors import error_body
from api.limits import STREAMED_TYPES, media_type
from api.responses import ErrorResponse, errors
from api.responses.media import Medium, MediumList
from api.routing import OneHopRoute
from domain.errors import NotFoundError, PermissionDeniedError, UnavailableError, ValidationError
from domain.media import MAX_MEDIUM_NAME
from domain.text import MAX_REASON
from projections.media import configuration_ids, list_media, live_deployment_ids, with_tail

router = APIRouter(route_class=OneHopRoute, prefix="/api/v1/media", tags=["media"], responses=errors(401, 503))

UPLOAD_PATH = "/api/v1/media"
ISO_TYPES = STREAMED_TYPES
QUEUED_CHUNKS = 8  # chunks (about 64 KiB each) between the request and the datastore: what an upload holds
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The ISO image itself, with a Content-Length",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in ISO_TYPES},
    }
}
LENGTH_REQUIRED: dict[int | str, dict[str, Any]] = {
    411: {"model": ErrorResponse, "description": "No Content-Length: an upload must say its size"}
}
UPLOAD_415: dict[int | str, dict[str, Any]] = {
    415: {"model": ErrorResponse, "description": "The body is not sent as " + " or ".join(ISO_TYPES)}
}


def may_curate(runtime: Runtime, who: Principal) -> bool:
    """Administrators, and service owners of any service: they define the configurations that
    attach ISOs (the library is shared, and each upload is bounded by STAGEKEEPER_MEDIA_MAX_BYTES)."""
    if who.is_admin:
        return True
    return any(g["role"] == "service-owner" for g in runtime.read_models.grants_of(who.user, who.groups))


def _medium(view: dict[str, Any], position: int) -> Medium:
    return Medium.model_validate({**{k: v for k, v in view.items() if k != "deleted"}, "position": position})


def _refuse(status_code: int, code: str, message: str, field: str) -> JSONResponse:
    # The body may be left unread: the connection cannot carry another request.
    return JSONResponse(error_body(code, message, field), status_code=status_code, headers={"Connection": "close"})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Medium,
    responses={**errors(403, 409, 413, 422, 502), **LENGTH_REQUIRED, **UPLOAD_415},
    openapi_extra=UPLOAD_BODY,
)
async def upload_medium(
    request: Request,
    runtime: RuntimeDep,
    who: PrincipalDep,
    name: str = Query(..., max_length=MAX_MEDIUM_NAME, description="The medium's unique name, e.g. alpine-3.20.iso"),
    reason: str | None = Query(None, max_length=MAX_REASON),
) -> Any:
    """Upload an ISO image (the body, streamed to the media datastore); administrators and service owners."""
    return await streamed_upload(request, runtime, who, name, reason)


async def streamed_upload(request: Request, runtime: Runtime, who: Principal, name: str, reason: str | None) -> Any:
    """The upload itself (the API's route and the console's): a Medium, or a refusal answered
    before the body is read (411, 413, 415)."""
    if not await anyio.to_thread.run_sync(may_curate, runtime, who):
        raise PermissionDeniedError(f"{who.user} may not upload media: administrators and service owners only")
    if media_type(request.headers.get("content-type")) not in ISO_TYPES:
        return _refuse(415, "unsupported_media_type", f"send the ISO as {' or '.join(ISO_TYPES)}", "content-type")
    length = request.headers.get("content-length")
    if length is None or not length.strip().isdigit():
        return _refuse(411, "length_required", "an upload must carry a Content-Length", "Content-Length")
    size, limit = int(length), runtime.settings.media_max_bytes
    if size > limit:
        message = f"the ISO is larger than {limit} bytes (STAGEKEEPER_MEDIA_MAX_BYTES)"
        return _refuse(413, "too_large", message, "Content-Length")
    if size == 0:
        raise ValidationError("the ISO is empty", field="Content-Length")
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(QUEUED_CHUNKS)
    wait = runtime.settings.vcenter_task_timeout
    command = partial(
        runtime.app.upload_medium, name, size, _drain(chunks, loop, wait), runtime.settings.media_datacenter,
        runtime.settings.media_datastore, limit, actor=who.user, reason=reason,
    )  # fmt: skip
    upload = asyncio.ensure_future(anyio.to_thread.run_sync(command))
    feeder = asyncio.ensure_future(_feed(request.stream(), chunks))
    # An upload that ends on its own (refused, or failed at vCenter) stops reading the body.
    upload.add_done_callback(lambda _: feeder.cancel())
    try:
        outcome = await upload
    finally:
        with suppress(asyncio.CancelledError):
            await feeder
    return _medium(outcome.value.view(), outcome.position)


def _drain(
    chunks: asyncio.Queue[bytes | BaseException | None], loop: asyncio.AbstractEventLoop, wait: float
) -> Iterator[bytes]:
    """The request's chunks, in the thread that writes them to the datastore (each taken from the
    event loop's queue: no polling on either side, and the queue bounds what is held)."""
    while True:
        try:
            item = asyncio.run_coroutine_threadsafe(asyncio.wait_for(chunks.get(), wait), loop).result()
        except TimeoutError:
            raise UnavailableError(f"the client sent nothing for {wait:g}s; upload abandoned") from None
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


async def _feed(body: AsyncIterator[bytes], chunks: asyncio.Queue[bytes | BaseException | None]) -> None:
    """Pass the body on as it arrives; waits while QUEUED_CHUNKS are not taken yet."""
    try:
        async for chunk in body:
            if chunk:
                await chunks.put(chunk)
    except ClientDisconnect:
        await chunks.put(UnavailableError("the client went away during the upload"))
        return
    await chunks.put(None)


@router.get("", response_model=MediumList, responses=errors(422))
def list_library(runtime: RuntimeDep, _: PrincipalDep, min_position: MinPosition = None) -> MediumList:
    """The media library (every authenticated caller: it is shared by all services)."""
    position = runtime.read_models.wait("media", min_position, runtime.settings.read_wait_seconds)
    items = [{**row, "datastore_path": f"[{row['datastore']}] {row['path']}"} for row in list_media(runtime.store)]
    return MediumList.model_validate({"items": items, "position": position})


@router.get("/{medium_id}", response_model=Medium, responses=errors(404, 422))
def get_medium(medium_id: UUID, runtime: RuntimeDep, _: PrincipalDep) -> Medium:
    """One medium: where it lies, its size and SHA-256."""
    medium = runtime.app.medium(medium_id)
    if medium.deleted:
        raise NotFoundError(f"no medium with id {medium_id}")
    return _medium(medium.view(), runtime.app.head())


@router.delete("/{medium_id}", response_model=Medium, responses=errors(403, 404, 409, 422, 502))
def delete_medium(
    medium_id: UUID,
    runtime: RuntimeDep,
    who: PrincipalDep,
    reason: str | None = Query(None, max_length=MAX_REASON),
) -> Medium:
    """Delete a medium and its file; refused (409, naming them) while a configuration or a live
    deployment attaches it. Administrators, and the service owner who uploaded it."""
    medium = runtime.app.medium(medium_id)
    if not (who.is_admin or (medium.uploaded_by == who.user and may_curate(runtime, who))):
        raise PermissionDeniedError(f"{who.user} may not delete medium {medium_id}: administrators and its uploader")
    outcome = runtime.app.delete_medium(
        medium_id, all_configurations(runtime), live_deployments(runtime), actor=who.user, reason=reason
    )
    return _medium(outcome.value.view(), outcome.position)


def all_configurations(runtime: Runtime) -> list[UUID]:
    """Every configuration, those the read model has not reached yet included (the rules read
    each one from the event store)."""
    position = runtime.read_models.position("configurations")
    return with_tail(
        configuration_ids(runtime.store), position,
        lambda start, limit: runtime.app.select_notifications(start, limit, ("stagekeeper:Configuration.Defined",)),
    )  # fmt: skip


def live_deployments(runtime: Runtime, service_id: str | None = None) -> list[UUID]:
    """Deployments the read model has as live, and those created since it last moved (each is
    read from the event store, where the undeployed ones drop out)."""
    position = runtime.read_models.position("deployments")
    return with_tail(
        live_deployment_ids(runtime.store, service_id), position,
        lambda start, limit: runtime.app.select_notifications(start, limit, ("stagekeeper:Deployment.Requested",)),
    )  # fmt: skip
