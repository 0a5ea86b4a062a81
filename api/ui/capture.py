"""Capture in the console: "Preview" (the API's dry run) and "Capture" of running VMs into a stage.

The same permission check and the same command as POST /api/v1/services/{id}/stages/{stage}/capture:
the form's fields are passed on as typed, and the domain's refusals are shown next to them.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.access import capture_stage, readable_service_ids
from api.routes.capture import holder_in
from api.ui.context import CheckedDep, ConsoleRoute, RuntimeDep, redirect, refused
from api.ui.forms import errors_for, optional, text
from api.ui.services import service_page_for
from domain.commands.capture import CaptureResult
from domain.errors import ConflictError, NotFoundError, ValidationError

router = APIRouter(prefix="/ui/services", route_class=ConsoleRoute, include_in_schema=False)
FORM_ID = "capture"
WHOLE = "refused"  # errors shown above the capture form (not in the page's own error banner)
# Domain field -> form field: "vms[3]" is the fourth line of the VM list.
FIELDS = {"vms": "vms", "folder": "folder", "resource_pool": "resource_pool", "configuration": "configuration",
          "reason": "reason", "stage": "stage"}  # fmt: skip
_SEPARATORS = re.compile(r"[\r\n,]+")


def vm_entries(raw: str) -> list[str] | None:
    """The VM ids or names typed one per line (or separated by commas); None when none is given."""
    entries = [entry.strip() for entry in _SEPARATORS.split(raw) if entry.strip()]
    return entries or None


def preview_of(result: CaptureResult) -> dict[str, Any]:
    """What the preview table shows of each machine: its VM, size, disks, NICs and addresses."""
    machines = []
    for machine in result.configuration["machines"]:
        vm = machine.get("captured") or {}
        machines.append({
            "name": machine["name"], "vm_name": vm.get("vm_name"), "vm_id": vm.get("vm_id"), "cpus": machine["cpus"],
            "memory_mib": machine["memory_mib"], "os": (machine.get("customization") or {}).get("os"),
            "disks": vm.get("disks") or [], "nics": vm.get("nics") or [], "ip": vm.get("ip"),
            "hostname": vm.get("hostname"), "pool": vm.get("resource_pool"), "host": vm.get("host"),
        })  # fmt: skip
    configuration = result.configuration
    return {
        "configuration": configuration["name"], "version": configuration["version"],
        "networks": configuration["networks"], "machines": machines,
        "claims": result.claims, "refusals": result.refusals,
    }  # fmt: skip


@router.post("/{service_id}/capture")
async def capture(request: Request, service_id: UUID, runtime: RuntimeDep, session: CheckedDep) -> Response:
    """Preview or capture: the API's permission check (owner and stage-operator), then the same command."""
    form = await request.form()
    stage = text(form, "stage")
    capture_stage(runtime, session.principal, service_id, stage)
    preview = text(form, "intent") == "preview"
    values = {key: value for key, value in form.items() if key not in ("csrf", "intent")}
    try:
        outcome = runtime.app.capture(
            service_id, stage, text(form, "configuration"), actor=session.user, vms=vm_entries(text(form, "vms")),
            folder=optional(form, "folder"), resource_pool=optional(form, "resource_pool"),
            reason=optional(form, "reason"), dry_run=preview,
            holder=holder_in(runtime, readable_service_ids(runtime, session.principal)),
        )  # fmt: skip
    except (ValidationError, ConflictError, NotFoundError) as error:
        refused(request, error)
        # A refused capture names every VM and why: it belongs to the whole form, not one field.
        fields = (
            {}
            if isinstance(error, ConflictError) or error.field is None
            else errors_for(ValidationError(error.message, field=error.field), fields=FIELDS)
        )
        fields = {key if key in FIELDS.values() else WHOLE: message for key, message in fields.items()}
        fields = fields or {WHOLE: error.message}
        status = 422 if isinstance(error, ValidationError) else 409 if isinstance(error, ConflictError) else 404
        bundle = {"form": FORM_ID, "fields": fields, "values": values}
        return service_page_for(request, runtime, session, service_id, errors=bundle, status=status)
    result = outcome.value
    if preview or result.deployment is None:
        shown = {"typed": values, "preview": preview_of(result)}
        return service_page_for(request, runtime, session, service_id, capture=shown)
    return redirect(request, f"/ui/deployments/{result.deployment.id}")
