"""The configuration page: machines and networks, the version history slider, diffs, restore, deploy."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from adapters.runtime import Runtime
from api.access import manage_configuration, operate_stage, read_configuration
from api.auth import Principal
from api.routes.configurations import version_at
from api.ui.allowed import may_manage, may_operate
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, SessionDep, redirect, refused, render, wait_for
from api.ui.forms import FORM, MACHINE_FIELDS, checked, errors_for, machine_from_form, optional, text
from api.ui.session import Session
from domain.diff import describe, diff_definitions
from domain.errors import ConflictError, NotFoundError, ValidationError

router = APIRouter(prefix="/ui/configurations", route_class=ConsoleRoute, include_in_schema=False)


def _version(runtime: Runtime, configuration_id: UUID, latest: int, version: int | None, as_of: str | None) -> int:
    if as_of:
        return version_at(runtime, configuration_id, as_of)
    if version is not None and not 1 <= version <= latest:
        raise NotFoundError(f"this configuration has versions 1 to {latest}", field="version")
    return version or latest


def _context(runtime: Runtime, who: Principal, configuration_id: UUID, version: int | None, as_of: str | None,
             at: int | None) -> dict[str, Any]:  # fmt: skip
    latest = read_configuration(runtime, who, configuration_id)
    shown_version = _version(runtime, configuration_id, latest.version, version, as_of)
    shown = latest if shown_version == latest.version else runtime.app.configuration(configuration_id, shown_version)
    service = runtime.app.service(latest.service_id)
    wait_for(runtime, "audit", at)
    history = runtime.audit.history(str(configuration_id))
    return {
        "title": latest.name, "nav": "board", "configuration": latest, "shown": shown, "service": service,
        "history": history, "entry": next((h for h in history if h["version"] == shown_version), None),
        "manage": may_manage(service, who),
        "deploy_stages": [s for s in service.stages if may_operate(service, who, s["name"])],
        "templates": sorted(runtime.app.catalogue().templates.values(), key=lambda t: str(t["name"]).casefold()),
        "deployments": [
            d for d in runtime.read_models.deployments(configuration_id=str(configuration_id), limit=100)
            if d["state"] != "undeployed"
        ],
        "errors": {}, "values": {},
    }  # fmt: skip


@router.get("/{configuration_id}")
def configuration_page(
    request: Request, configuration_id: UUID, runtime: RuntimeDep, session: SessionDep,
    version: int | None = Query(None, ge=1), as_of: str | None = Query(None, max_length=64),
    at: int | None = Query(None, ge=0),
) -> Response:  # fmt: skip
    return render(
        request, "configuration.html", _context(runtime, session.principal, configuration_id, version, as_of, at)
    )


@router.get("/{configuration_id}/version")
def version_fragment(
    request: Request, configuration_id: UUID, runtime: RuntimeDep, session: SessionDep,
    version: int | None = Query(None, ge=1), as_of: str | None = Query(None, max_length=64),
) -> Response:  # fmt: skip
    """The definition at one version (or time): what the history slider shows."""
    context = _context(runtime, session.principal, configuration_id, version, as_of, None)
    return render(request, "fragments/definition.html", context)


@router.get("/{configuration_id}/diff")
def diff_page(
    request: Request, configuration_id: UUID, runtime: RuntimeDep, session: SessionDep,
    from_version: int = Query(alias="from", ge=1), to_version: int | None = Query(None, alias="to", ge=1),
) -> Response:  # fmt: skip
    """Two versions side by side, with what changed between them."""
    latest = read_configuration(runtime, session.principal, configuration_id)
    to_version = to_version or latest.version
    for name, value in (("from", from_version), ("to", to_version)):
        if value > latest.version:
            raise NotFoundError(f"this configuration has versions 1 to {latest.version}", field=name)
    before = runtime.app.definition_at(configuration_id, from_version)
    after = runtime.app.definition_at(configuration_id, to_version)
    changes = diff_definitions(before, after)
    context = {
        "title": f"{latest.name}: v{from_version} ↔ v{to_version}", "nav": "board", "configuration": latest,
        "from_version": from_version, "to_version": to_version, "before": before, "after": after,
        "changes": changes, "summary": describe(changes), "service": runtime.app.service(latest.service_id),
    }  # fmt: skip
    return render(request, "diff.html", context)


def _failed(request: Request, runtime: Runtime, session: Session, configuration_id: UUID, form_id: str,
            error: ValidationError | ConflictError | NotFoundError, values: dict[str, Any],
            prefix: str = "", fields: dict[str, str] | None = None) -> Response:  # fmt: skip
    refused(request, error)
    context = _context(runtime, session.principal, configuration_id, None, None, None)
    mapped = errors_for(ValidationError(error.message, field=error.field), prefix, fields)
    context.update(errors={"form": form_id, "fields": mapped}, values=values)
    status = 422 if isinstance(error, ValidationError) else 409 if isinstance(error, ConflictError) else 404
    return render(request, "configuration.html", context, status)


def _values(form: Any) -> dict[str, Any]:
    return {k: (form.getlist(k) if k == "nics" else v) for k, v in form.items() if k != "csrf"}


@router.post("/{configuration_id}/machines")
async def add_machine(request: Request, configuration_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    manage_configuration(runtime, session.principal, configuration_id)
    form = await request.form()
    try:
        outcome = runtime.app.add_machine(configuration_id, machine_from_form(form), actor=session.user,
                                          reason=optional(form, "reason"))  # fmt: skip
    except (ValidationError, ConflictError) as error:
        return _failed(request, runtime, session, configuration_id, "add-machine", error, _values(form), "machine",
                       MACHINE_FIELDS)  # fmt: skip
    return redirect(request, f"/ui/configurations/{configuration_id}?at={outcome.position}#machines")


@router.post("/{configuration_id}/machines/{name}")
async def change_machine(
    request: Request, configuration_id: UUID, name: str, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    manage_configuration(runtime, session.principal, configuration_id)
    form = await request.form()
    try:
        outcome = runtime.app.change_machine(configuration_id, name, machine_from_form(form), actor=session.user,
                                             reason=optional(form, "reason"))  # fmt: skip
    except (ValidationError, ConflictError) as error:
        return _failed(request, runtime, session, configuration_id, f"machine-{name}", error, _values(form),
                       "machine", MACHINE_FIELDS)  # fmt: skip
    return redirect(request, f"/ui/configurations/{configuration_id}?at={outcome.position}#machines")


@router.post("/{configuration_id}/machines/{name}/remove")
async def remove_machine(
    request: Request, configuration_id: UUID, name: str, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    manage_configuration(runtime, session.principal, configuration_id)
    form = await request.form()
    outcome = runtime.app.remove_machine(configuration_id, name, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/configurations/{configuration_id}?at={outcome.position}#machines")


@router.post("/{configuration_id}/networks")
async def add_network(request: Request, configuration_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    manage_configuration(runtime, session.principal, configuration_id)
    form = await request.form()
    network = {"name": text(form, "name"), "description": text(form, "description")}
    try:
        outcome = runtime.app.add_network(
            configuration_id, network, actor=session.user, reason=optional(form, "reason")
        )
    except (ValidationError, ConflictError) as error:
        return _failed(request, runtime, session, configuration_id, "add-network", error, _values(form), "network")
    return redirect(request, f"/ui/configurations/{configuration_id}?at={outcome.position}#networks")


@router.post("/{configuration_id}/networks/{name}/remove")
async def remove_network(
    request: Request, configuration_id: UUID, name: str, runtime: RuntimeDep, session: CheckedDep
) -> Response:
    manage_configuration(runtime, session.principal, configuration_id)
    form = await request.form()
    outcome = runtime.app.remove_network(configuration_id, name, actor=session.user, reason=optional(form, "reason"))
    return redirect(request, f"/ui/configurations/{configuration_id}?at={outcome.position}#networks")


@router.post("/{configuration_id}/restore")
async def restore(request: Request, configuration_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    manage_configuration(runtime, session.principal, configuration_id)
    form = await request.form()
    raw = text(form, "version")
    if not raw.isdigit():
        raise ValidationError("choose the version to restore", field="version")
    try:
        outcome = runtime.app.restore_configuration(configuration_id, int(raw), actor=session.user,
                                                    reason=optional(form, "reason"))  # fmt: skip
    except (ValidationError, ConflictError) as error:
        return _failed(request, runtime, session, configuration_id, "restore", error, _values(form))
    return redirect(request, f"/ui/configurations/{configuration_id}?at={outcome.position}")


@router.post("/{configuration_id}/deploy")
async def deploy(request: Request, configuration_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    configuration = read_configuration(runtime, session.principal, configuration_id)
    form = await request.form()
    stage = text(form, "stage")
    if not stage:
        raise ValidationError("choose a stage to deploy to", field="stage")
    operate_stage(runtime, session.principal, runtime.app.service(configuration.service_id), stage, "deploy")
    try:
        outcome = runtime.app.deploy(
            configuration_id, stage, actor=session.user, reason=optional(form, "reason"), fence=checked(form, "fence")
        )
    except (ValidationError, ConflictError) as error:
        return _failed(request, runtime, session, configuration_id, "deploy", error, _values(form), "", {FORM: FORM})
    return redirect(request, f"/ui/deployments/{outcome.value.id}")
