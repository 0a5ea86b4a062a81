"""Archives: Archive Now, the catalogue, restore, hold and retention."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from api.access import operate_deployment, operate_stage, read_deployment, readable_service_ids
from api.deps import PrincipalDep, RuntimeDep, set_version
from api.responses import errors
from api.responses.archives import SUMMARY_FIELDS, Archive, ArchiveList, ArchiveSummary, TierUsage
from api.routing import OneHopRoute
from api.schemas import Reason
from domain.archive import Archive as ArchiveAggregate
from domain.commands.archives import MAX_PAGE
from domain.deployment import UNDEPLOYED
from domain.errors import PermissionDeniedError

router = APIRouter(route_class=OneHopRoute, tags=["archives"], responses=errors(401, 403, 404, 422, 503))


class ArchiveRequest(Reason):
    consistency: str | None = Field(
        None, description="power-off or snapshot (default by the stage: snapshot in a restricted stage, else power-off)"
    )
    retention_days: int | None = Field(None, description="Delete the archive this many days after it was made")


class RestoreRequest(Reason):
    stage: str = Field(description="The stage of the archive's service to restore into")
    fence: bool = Field(
        False, description="Behind the stage's fence: own port groups and gateway, the archived IPs and MACs kept"
    )


class MoveRequest(Reason):
    tier: str = Field(description="One of the configured tiers (STAGEKEEPER_ARCHIVE_TIERS)")


class RetentionRequest(Reason):
    retention_days: int | None = Field(description="Days after its making the archive is deleted; null keeps it")


def _answer(response: Response, archive: ArchiveAggregate, position: int) -> Archive:
    set_version(response, archive.version, position)
    response.headers["Location"] = f"/api/v1/archives/{archive.id}"
    return Archive.model_validate({**archive.view(), "position": position})


def readable_archive(runtime: RuntimeDep, who: PrincipalDep, archive_id: UUID) -> ArchiveAggregate:
    archive = runtime.app.archive(archive_id)
    services = readable_service_ids(runtime, who)
    if services is not None and str(archive.service_id) not in services:
        raise PermissionDeniedError(f"{who.user} holds no role on the service of archive {archive_id}")
    return archive


def operate_archive(runtime: RuntimeDep, who: PrincipalDep, archive: ArchiveAggregate, action: str) -> None:
    operate_stage(runtime, who, runtime.app.service(archive.service_id), archive.stage, action)


@router.post(
    "/api/v1/deployments/{deployment_id}/archive",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Archive,
    responses=errors(409, 413, 415),
)
def archive_now(
    deployment_id: UUID, body: ArchiveRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> Archive:
    """Archive Now: copy every machine of the deployment to the archive tier (operator of its stage)."""
    operate_deployment(runtime, who, deployment_id, "archive")
    outcome = runtime.app.archive_now(
        deployment_id, actor=who.user, reason=body.reason, consistency=body.consistency,
        retention_days=body.retention_days,
    )  # fmt: skip
    return _answer(response, outcome.value, outcome.position)


@router.get("/api/v1/archives", response_model=ArchiveList)
def list_archives(
    runtime: RuntimeDep,
    who: PrincipalDep,
    service_id: UUID | None = None,
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> ArchiveList:
    """The archive catalogue, newest first, of the services the caller may read."""
    position = runtime.app.head()
    found = runtime.app.list_archives(readable_service_ids(runtime, who), service_id, limit, offset)
    items = [ArchiveSummary.model_validate({k: a.view()[k] for k in SUMMARY_FIELDS}) for a in found]
    return ArchiveList(items=items, tiers=tier_usage(runtime), position=position)


def tier_usage(runtime: RuntimeDep) -> list[TierUsage]:
    """Space per tier: a datastore tier's from the catalogue (a file referenced by a later archive is
    stored once), a file tier's from the tier itself (after dedupe and compression)."""
    usage = {t: [0, 0] for t in runtime.app.archive_tiers}
    for archive in runtime.app.list_archives(None, limit=MAX_PAGE):
        for stored in archive.files:
            if stored["tier"] in usage and not stored["tier"].startswith("file:"):
                usage[stored["tier"]][0] += int(stored["size"])
                usage[stored["tier"]][1] += 0 if stored["reused_from"] else int(stored["size"])
    for name, tier in runtime.file_tiers.items():
        usage[name] = list(tier.stats())
    return [
        TierUsage(
            name=name, kind="file" if name.startswith("file:") else "datastore", logical_bytes=logical,
            stored_bytes=stored, saving_percent=round(100 * (1 - stored / logical), 1) if logical else 0.0,
        )
        for name, (logical, stored) in usage.items()
    ]  # fmt: skip


@router.get("/api/v1/archives/{archive_id}", response_model=Archive)
def get_archive(archive_id: UUID, runtime: RuntimeDep, who: PrincipalDep, response: Response) -> Archive:
    """One archive: its machines' records, every file with size and SHA-256, and its restores."""
    return _answer(response, readable_archive(runtime, who, archive_id), runtime.app.head())


@router.post(
    "/api/v1/archives/{archive_id}/restore",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Archive,
    responses=errors(409, 413, 415),
)
def restore_archive(
    archive_id: UUID, body: RestoreRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> Archive:
    """Restore the archived machines as a new deployment of a stage (operator of that stage; into the
    archived deployment's own stage while it lives, the rights a swap over it needs)."""
    archive = readable_archive(runtime, who, archive_id)
    service = runtime.app.service(archive.service_id)
    operate_stage(runtime, who, service, body.stage, "restore into")
    source = runtime.app.deployment(archive.deployment_id)
    if source.state != UNDEPLOYED and service.stage(body.stage)["name"] == source.stage:
        read_deployment(runtime, who, source.id)
        operate_deployment(runtime, who, source.id, "swap")
    outcome = runtime.app.restore_archive(archive_id, body.stage, body.fence, actor=who.user, reason=body.reason)
    return _answer(response, outcome.value, outcome.position)


@router.post(
    "/api/v1/archives/{archive_id}/move",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Archive,
    responses=errors(409, 413, 415),
)
def move_archive(
    archive_id: UUID, body: MoveRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> Archive:
    """Move the archive to another tier: copied, checked, recorded, then the old copy freed (operator of its stage)."""
    operate_archive(runtime, who, readable_archive(runtime, who, archive_id), "move archives of")
    outcome = runtime.app.move_archive(archive_id, body.tier, actor=who.user, reason=body.reason)
    return _answer(response, outcome.value, outcome.position)


@router.post("/api/v1/archives/{archive_id}/hold", response_model=Archive, responses=errors(409, 413, 415))
def hold_archive(archive_id: UUID, body: Reason, runtime: RuntimeDep, who: PrincipalDep, response: Response) -> Archive:
    """Put the archive on hold: retention never deletes it while held (operator of its stage)."""
    operate_archive(runtime, who, readable_archive(runtime, who, archive_id), "hold archives of")
    outcome = runtime.app.hold_archive(archive_id, True, actor=who.user, reason=body.reason)
    return _answer(response, outcome.value, outcome.position)


@router.delete("/api/v1/archives/{archive_id}/hold", response_model=Archive, responses=errors(409))
def lift_hold(archive_id: UUID, runtime: RuntimeDep, who: PrincipalDep, response: Response) -> Archive:
    """Lift the archive's hold (operator of its stage)."""
    operate_archive(runtime, who, readable_archive(runtime, who, archive_id), "lift holds of")
    outcome = runtime.app.hold_archive(archive_id, False, actor=who.user)
    return _answer(response, outcome.value, outcome.position)


@router.put("/api/v1/archives/{archive_id}/retention", response_model=Archive, responses=errors(409, 413, 415))
def set_retention(
    archive_id: UUID, body: RetentionRequest, runtime: RuntimeDep, who: PrincipalDep, response: Response
) -> Archive:
    """Set how long the archive is kept (operator of its stage)."""
    operate_archive(runtime, who, readable_archive(runtime, who, archive_id), "set retention of archives of")
    outcome = runtime.app.set_archive_retention(archive_id, body.retention_days, actor=who.user, reason=body.reason)
    return _answer(response, outcome.value, outcome.position)


@router.delete("/api/v1/archives/{archive_id}", response_model=Archive, responses=errors(409))
def delete_archive(archive_id: UUID, runtime: RuntimeDep, who: PrincipalDep, response: Response) -> Archive:
    """Delete the archive and its files (operator of its stage; refused while on hold)."""
    operate_archive(runtime, who, readable_archive(runtime, who, archive_id), "delete archives of")
    outcome = runtime.app.delete_archive(archive_id, actor=who.user)
    return _answer(response, outcome.value, outcome.position)
