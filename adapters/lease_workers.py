"""The lease scheduler's and the webhook deliverer's threads, wired beside the process manager.

The scheduler acts only in the process that leads the process manager (the same lock); webhook
delivery has a lock of its own, a position of its own and a thread of its own, so a slow or dead
receiver never delays the process manager or a command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.webhooks import DeliveryPolicy, WebhookDelivery
from adapters.workers import FollowerThread, Leadership
from domain.notifications import TOPICS as NOTIFICATION_TOPICS
from domain.processes.leases import LeaseScheduler
from projections.base import Projection
from projections.leases import LeasesProjection, lease_candidates, note_seen
from projections.webhooks import WebhooksProjection

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adapters.runtime import Runtime

WEBHOOKS_LOCK = "process:webhooks"
_NOTIFYING = frozenset(NOTIFICATION_TOPICS)


class LeaseWorkers:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        store = runtime.store
        self.scheduler = LeaseScheduler(
            runtime.app,
            lambda: lease_candidates(store),
            lambda deployment_id, version, at: note_seen(store, deployment_id, version, at),
            runtime.clock,
            interval=settings.lease_tick_seconds,
        )
        self.delivery = WebhookDelivery(
            runtime.app,
            runtime.store,
            runtime.clock,
            global_url=settings.webhook_url,
            global_secret=settings.webhook_secret,
            policy=DeliveryPolicy(timeout=settings.webhook_timeout_seconds, max_attempts=settings.webhook_max_attempts),
        )
        self.webhook_leadership = Leadership(
            acquire=lambda: store.try_lock(WEBHOOKS_LOCK), holds=lambda: store.holds_lock(WEBHOOKS_LOCK)
        )
        # The scheduler's own clock check spaces its passes; the thread only wakes it.
        self.lease_thread = FollowerThread(
            "leases", [self.scheduler], min(settings.lease_tick_seconds, 5.0), leadership=runtime.leadership
        )
        self.webhook_thread = FollowerThread(
            "webhooks", [self.delivery], max(settings.poll_seconds, 1.0), leadership=self.webhook_leadership
        )
        runtime.app.on_saved(self._wake)

    @staticmethod
    def projections() -> list[Projection]:
        return [LeasesProjection(), WebhooksProjection()]

    def _wake(self, position: int, topics: Sequence[str]) -> None:
        if not _NOTIFYING.isdisjoint(topics):
            self.webhook_thread.wake()

    def start(self) -> None:
        self.lease_thread.start()
        self.webhook_thread.start()

    def stop(self) -> None:
        self.lease_thread.stop()
        self.webhook_thread.stop()
