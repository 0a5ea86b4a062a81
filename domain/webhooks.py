"""Webhook subscriptions: a URL told of events of some kinds, for one service or (admins) all of them.

The secret signs each body (HMAC-SHA256). It is shown once, when the subscription is made; the
delivery worker reads it from the aggregate, and no answer of the API carries it afterwards.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransitionError, ValidationError
from domain.notifications import KIND_NAMES
from domain.text import check_text

MAX_URL = 2000
MAX_WEBHOOKS_PER_SCOPE = 50


def check_url(value: object, field: str = "url") -> str:
    url = check_text(value, field, max_length=MAX_URL, required=True).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{field} must be an http:// or https:// URL with a host", field=field)
    if parts.username or parts.password:
        raise ValidationError(f"{field} must not carry a user or password (the body is signed instead)", field=field)
    return url


def check_kinds(value: object, field: str = "kinds") -> list[str]:
    if not isinstance(value, list) or not value or len(value) > len(KIND_NAMES):
        raise ValidationError(f"{field} must list one or more of {', '.join(KIND_NAMES)}", field=field)
    kinds: list[str] = []
    for i, kind in enumerate(value):
        if kind not in KIND_NAMES:
            raise ValidationError(f"{field}[{i}] must be one of {', '.join(KIND_NAMES)}", field=f"{field}[{i}]")
        if kind not in kinds:
            kinds.append(kind)
    return sorted(kinds)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class Webhook(Aggregate):
    TOPIC = "stagekeeper:Webhook"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:Webhook.Created"

    @event("Subscribed", topic="stagekeeper:Webhook.Subscribed")
    def __init__(
        self, service_id: UUID | None, kinds: list[str], url: str, secret: str, actor: str, reason: str | None
    ) -> None:
        self.service_id = service_id
        self.kinds = list(kinds)
        self.url = url
        self.secret = secret
        self.created_by = actor
        self.removed = False

    def remove(self, actor: str, reason: str | None) -> None:
        if self.removed:
            raise InvalidTransitionError("the webhook is removed already")
        self._removed(actor=actor, reason=reason)

    @event("Removed", topic="stagekeeper:Webhook.Removed")
    def _removed(self, actor: str, reason: str | None) -> None:
        self.removed = True
