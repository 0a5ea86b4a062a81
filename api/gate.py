"""The admission gate's view of an HTTP request, and the 202 that answers a command held for approval.

An async dependency runs in the request's own task, so the context it sets is copied into the
worker thread the route runs in, and from there the domain's gate reads it (domain/gate.py).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.deps import PrincipalDep, RuntimeDep
from api.responses.governance import AwaitingApproval as AwaitingApprovalOut
from api.views_governance import approval_view
from domain.gate import GateContext
from domain.governance import AwaitingApprovalError


async def governed(request: Request, runtime: RuntimeDep, who: PrincipalDep) -> None:
    """Dependency of the lifecycle routes: the caller's groups and the body's override_freeze / at."""
    data: Any = {}
    if request.method in ("POST", "PUT", "PATCH"):
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            data = {}  # the route's own body model answers 422
    data = data if isinstance(data, dict) else {}
    override, at = data.get("override_freeze"), data.get("at")
    runtime.app.gate_context.set(
        GateContext(caller=who.caller, override_freeze=override is True, at=at if isinstance(at, str) else None)
    )


def install_gate(app: FastAPI) -> None:
    @app.exception_handler(AwaitingApprovalError)
    def awaiting(request: Request, held: AwaitingApprovalError) -> JSONResponse:
        view = approval_view(held.approval, None, held.position)
        body = AwaitingApprovalOut.model_validate({"approval_id": held.approval.id, "state": held.approval.state,
                                                   "approval": view})  # fmt: skip
        return JSONResponse(
            body.model_dump(mode="json"),
            status_code=202,
            headers={"Location": f"/api/v1/approvals/{held.approval.id}"},
        )


# The lifecycle routes whose 202 may be an approval request instead of the deployment.
HELD = (
    "/api/v1/deployments/{deployment_id}/promote",
    "/api/v1/deployments/{deployment_id}/copy",
    "/api/v1/deployments/{deployment_id}/swap",
    "/api/v1/deployments/{deployment_id}/upgrade",
)


def document_gate(app: FastAPI) -> None:
    """Say in the OpenAPI document that those 202s are the deployment or an approval request."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            held = AwaitingApprovalOut.model_json_schema(
                ref_template="#/components/schemas/{model}", mode="serialization"
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(held.pop("$defs", {}))
            schemas["AwaitingApproval"] = held
            schemas["DeploymentOrApproval"] = {
                "title": "DeploymentOrApproval",
                "oneOf": [
                    {"$ref": "#/components/schemas/Deployment"},
                    {"$ref": "#/components/schemas/AwaitingApproval"},
                ],
            }
            for path in HELD:
                post = document["paths"].get(path, {}).get("post")
                if post is None:
                    continue
                content = post["responses"]["202"]["content"]["application/json"]
                content["schema"] = {"$ref": "#/components/schemas/DeploymentOrApproval"}
                post["responses"]["202"]["description"] = (
                    "Accepted: the deployment as it now is, or, when the stage needs approvals or the promote "
                    "is scheduled (`at`), the approval request (`Location: /api/v1/approvals/{id}`)"
                )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
