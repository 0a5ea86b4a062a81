"""Webhook subscriptions (signed notifications to a URL) and their delivery log."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, status

from adapters.runtime import Runtime
from adapters.webhooks import SETTINGS_WEBHOOK_ID
from api.access import manage_service, require_admin
from api.auth import Principal
from api.deps import MinPosition, PrincipalDep, RuntimeDep
from api.responses import errors
from api.responses.leases import DeliveryList, NewWebhook, RemovedWebhook, WebhookList
from api.routing import OneHopRoute
from api.schemas import Reason, WebhookCreate
from domain.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from domain.notifications import KIND_NAMES
from domain.permissions import can_manage, can_read
from domain.webhooks import MAX_WEBHOOKS_PER_SCOPE, Webhook
from projections.webhooks import deliveries, list_webhooks

router = APIRouter(
    route_class=OneHopRoute, prefix="/api/v1/webhooks", tags=["webhooks"], responses=errors(401, 403, 422, 503)
)
MAX_PAGE = 200


def _view(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "service_id": webhook.service_id,
        "kinds": webhook.kinds,
        "url": webhook.url,
        "created_by": webhook.created_by,
        "created_at": webhook.created_on.isoformat(),
    }


def _settings_webhook(runtime: Runtime) -> dict[str, Any] | None:
    url = runtime.settings.webhook_url
    if not url:
        return None
    return {
        "id": SETTINGS_WEBHOOK_ID, "service_id": None, "kinds": list(KIND_NAMES), "url": url,
        "created_by": "STAGEKEEPER_WEBHOOK_URL", "created_at": None, "source": "settings",
    }  # fmt: skip


def _may_manage(runtime: Runtime, who: Principal, webhook_id: UUID) -> Webhook | None:
    """The subscription, if the caller may see and remove it (None: the settings one, for admins)."""
    if str(webhook_id) == SETTINGS_WEBHOOK_ID:
        require_admin(who, "see the webhook set by STAGEKEEPER_WEBHOOK_URL")
        return None
    webhook = runtime.app.webhook(webhook_id)
    if webhook.service_id is None:
        if not who.is_admin:
            raise NotFoundError(f"no webhook with id {webhook_id}")
    else:
        # Named by the webhook, never by its service: a caller with no role learns nothing.
        grants = list(runtime.app.service(webhook.service_id).grants.values())
        if not can_read(grants, who.caller):
            raise PermissionDeniedError(f"{who.user} holds no role on the service of webhook {webhook_id}")
        if not can_manage(grants, who.caller):
            raise PermissionDeniedError(f"{who.user} is not an owner of the service of webhook {webhook_id}")
    return webhook


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NewWebhook, responses=errors(404, 409, 413, 415))
def subscribe(body: WebhookCreate, runtime: RuntimeDep, who: PrincipalDep) -> NewWebhook:
    """Tell a URL of events of some kinds, for one service (its owners) or every service (admins).
    The `secret` that signs the bodies is shown only in this answer."""
    service_id: UUID | None = None
    if body.service_id is None:
        require_admin(who, "subscribe a webhook to every service")
    else:
        try:
            service_id = UUID(body.service_id)
        except ValueError:
            raise ValidationError("service_id must be a service id (UUID)", field="service_id") from None
        manage_service(runtime, who, service_id)
    scope = {str(service_id)} if service_id else set()
    existing = [
        w
        for w in list_webhooks(runtime.store, scope, service_id is None)
        if w["service_id"] == (str(service_id) if service_id else None)
    ]
    if len(existing) >= MAX_WEBHOOKS_PER_SCOPE:
        raise ConflictError(f"at most {MAX_WEBHOOKS_PER_SCOPE} webhooks per service (and globally)", field="url")
    outcome = runtime.app.subscribe_webhook(service_id, body.kinds, body.url, actor=who.user, reason=body.reason)
    webhook = outcome.value
    return NewWebhook.model_validate({**_view(webhook), "secret": webhook.secret, "position": outcome.position})


@router.get("", response_model=WebhookList)
def webhooks(runtime: RuntimeDep, who: PrincipalDep, min_position: MinPosition = None) -> WebhookList:
    """The subscriptions of the services you own (administrators: all, and the global ones); never a secret."""
    position = runtime.read_models.wait("webhooks", min_position, runtime.settings.read_wait_seconds)
    if who.is_admin:
        rows = list_webhooks(runtime.store, None, include_global=True)
        settings_hook = _settings_webhook(runtime)
        if settings_hook is not None:
            rows.append(settings_hook)
    else:
        rows = list_webhooks(runtime.store, set(runtime.read_models.readable_services(who.user, who.groups)), False)
        owned: dict[str, bool] = {}
        for row in rows:
            if row["service_id"] not in owned:
                service = runtime.app.service(UUID(row["service_id"]))
                owned[row["service_id"]] = can_manage(list(service.grants.values()), who.caller)
        rows = [r for r in rows if owned[r["service_id"]]]
    items = [{k: v for k, v in row.items() if k not in ("removed", "position")} for row in rows]
    return WebhookList.model_validate({"items": items, "position": position})


@router.delete("/{webhook_id}", response_model=RemovedWebhook, responses=errors(404, 409, 413, 415))
def remove(webhook_id: UUID, runtime: RuntimeDep, who: PrincipalDep, body: Reason | None = None) -> RemovedWebhook:
    """Stop a subscription (pending deliveries are cancelled)."""
    webhook = _may_manage(runtime, who, webhook_id)
    if webhook is None:
        raise ConflictError("the webhook set by STAGEKEEPER_WEBHOOK_URL is removed by unsetting it", field="webhook_id")
    outcome = runtime.app.remove_webhook(webhook_id, actor=who.user, reason=body.reason if body else None)
    runtime.lease_workers.delivery.forget(str(webhook_id))
    return RemovedWebhook.model_validate({**_view(outcome.value), "position": outcome.position})


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList, responses=errors(404))
def delivery_log(
    webhook_id: UUID,
    runtime: RuntimeDep,
    who: PrincipalDep,
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    before: int | None = Query(None, ge=1, description="Only deliveries of events before this position"),
) -> DeliveryList:
    """What was delivered to a subscription, newest first: state, attempts, last status or error."""
    _may_manage(runtime, who, webhook_id)
    rows = deliveries(runtime.store, str(webhook_id), limit + 1, before)
    page = rows[:limit]
    next_before = page[-1]["position"] if len(rows) > limit else None
    items = [{k: v for k, v in row.items() if k != "webhook_id"} for row in page]
    return DeliveryList.model_validate({"items": items, "next_before": next_before})
