"""Webhook subscription commands (who may make them is the API's check: owners, or admins for global ones)."""

from __future__ import annotations

from uuid import UUID

from domain.application import Outcome, StagekeeperApplication
from domain.service import Service
from domain.text import check_reason
from domain.webhooks import Webhook, check_kinds, check_url, new_secret


class WebhookCommands(StagekeeperApplication):
    def webhook(self, webhook_id: UUID) -> Webhook:
        return self.load(Webhook, webhook_id, "webhook")

    def subscribe_webhook(
        self, service_id: UUID | None, kinds: object, url: object, actor: str, reason: str | None = None
    ) -> Outcome[Webhook]:
        """Tell `url` of events of `kinds` (for one service, or every service when None). The
        returned aggregate's `secret` signs every body; show it once."""
        reason = check_reason(reason)
        checked_kinds, checked_url = check_kinds(kinds), check_url(url)
        if service_id is not None:
            self.load(Service, service_id, "service")  # it must exist
        webhook = Webhook(
            service_id=service_id, kinds=checked_kinds, url=checked_url, secret=new_secret(), actor=actor, reason=reason
        )
        return Outcome(webhook, self.commit(webhook))

    def remove_webhook(self, webhook_id: UUID, actor: str, reason: str | None = None) -> Outcome[Webhook]:
        reason = check_reason(reason)

        def attempt() -> Outcome[Webhook]:
            webhook = self.webhook(webhook_id)
            webhook.remove(actor, reason)
            return Outcome(webhook, self.commit(webhook))

        return self.retrying(attempt)
