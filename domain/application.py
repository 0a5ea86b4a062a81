"""The Stagekeeper application: every command and point-in-time read of the domain.

Commands load aggregates, decide, and save all the aggregates they touched in one atomic
write. A write that loses an optimistic-concurrency race is retried from a fresh read a few
times (the rules are checked again, so two concurrent promotes still give one winner and one
InvalidTransitionError); a caller's stale If-Match is a PreconditionFailedError.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ApplicationRecorder, EventStore, IntegrityError, Notification, StoredEvent
from eventsourcing.utils import get_topic

from domain.accounts import ApiToken, LocalAccount
from domain.address_plan import AddressPlan
from domain.catalogue import CATALOGUE_ID, TemplateCatalogue
from domain.configuration import Configuration
from domain.deployment import Deployment
from domain.errors import (
    ConcurrencyError,
    NotFoundError,
    PreconditionFailedError,
    UnavailableError,
)
from domain.gate import GateContext
from domain.names import NameClaim
from domain.outage import GuardedRecorder
from domain.pool_plan import PoolPlan
from domain.ports import Clock, VCenterDriver
from domain.refusal import Refusal
from domain.requestcontext import current_request_id
from domain.requests import DuplicateRequestError, PendingRequest, RequestRecord
from domain.service import Service

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")

# Installation-wide aggregates (the pool and address plans) make unrelated commands of different
# services race on one version: those are retried, with a jittered backoff, until one of them has
# truly lost to a change of the same object.
_ATTEMPTS = 12
_BACKOFF_SECONDS = 0.002


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's `project_aggregate` without its check of each event against a runtime
    Protocol (`isinstance(event, CanMutateProtocol)`, about 15 us a call on Python 3.11, several a
    command): every stored event and snapshot of this application is the library's, with `mutate`."""
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What a command produced, and the notification position it wrote (for read-your-writes)."""

    value: R
    position: int


@dataclass(frozen=True)
class Saved:
    """What one save of this process wrote: the aggregates, the positions (none when the outcome
    had to be found out after an interruption: then only `position`, the head, bounds them) and
    the event topics."""

    position: int
    positions: tuple[int, ...]
    originator_ids: frozenset[UUID]
    topics: tuple[str, ...]


class StagekeeperApplication(Application[UUID]):
    """Base: persistence, aggregate loading and the save-with-retry machinery."""

    name = "stagekeeper"
    # The address and pool plans are one aggregate each for the whole installation: snapshot them often.
    snapshotting_intervals = {
        Service: 50,
        Configuration: 50,
        Deployment: 50,
        TemplateCatalogue: 20,
        AddressPlan: 20,
        PoolPlan: 20,
    }
    # A snapshot rebuilds its aggregate from up to an interval of events: without the check above.
    snapshotting_projectors = dict.fromkeys(snapshotting_intervals, _project)

    def __init__(
        self, env: Mapping[str, str], vcenter: VCenterDriver, clock: Clock, unavailable_seconds: float = 5.0
    ) -> None:
        # Set first: the recorders built by Application.__init__ take their time budget from it.
        self.unavailable_seconds = unavailable_seconds
        super().__init__(env=env)
        self.vcenter = vcenter
        self.clock = clock
        self._listeners: list[Callable[[int, Sequence[str]], None]] = []
        self._commit_listeners: list[Callable[[Saved], None]] = []
        self._listeners_lock = threading.Lock()
        # The request being served (Idempotency-Key), if any. A request is served partly on the
        # event loop and partly in a worker thread; a context variable follows it into the thread
        # where commit() runs, without every command having to pass it along. One per instance.
        self.pending_request: ContextVar[PendingRequest | None] = ContextVar(
            f"stagekeeper-request-{id(self)}", default=None
        )
        # What the admission gate knows about the request being served (domain/gate.py).
        self.gate_context: ContextVar[GateContext | None] = ContextVar(f"stagekeeper-gate-{id(self)}", default=None)

    # -- the event store, with outages translated where they enter (domain/outage.py) ---------
    def construct_recorder(self) -> ApplicationRecorder:
        return cast(ApplicationRecorder, GuardedRecorder(super().construct_recorder(), self._call_budget()))

    def construct_snapshot_store(self) -> EventStore[UUID]:
        store = super().construct_snapshot_store()
        store.recorder = cast(ApplicationRecorder, GuardedRecorder(store.recorder, self._call_budget()))
        return store

    def _call_budget(self) -> float:
        # Half the bound per call leaves room for a second one (an interrupted commit's check).
        return self.unavailable_seconds / 2

    # -- notifications inside this process -------------------------------------------------
    def on_saved(self, listener: Callable[[int, Sequence[str]], None]) -> None:
        """Call `listener(position, topics)` after every successful save (wakes in-process followers)."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def on_commit(self, listener: Callable[[Saved], None]) -> None:
        """Call `listener(saved)` after every successful save, with the aggregates and positions it
        wrote (lets a follower of one aggregate ignore writes to others)."""
        with self._listeners_lock:
            self._commit_listeners.append(listener)

    def head(self) -> int:
        """Position of the last event in the store (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def select_notifications(self, start: int, limit: int, topics: Sequence[str] = ()) -> Sequence[Notification]:
        """Stored events from position `start` on, in order (for projections and workers)."""
        return self.recorder.select_notifications(start=start, limit=limit, topics=topics)

    def decode(self, notification: Notification) -> Any:
        return self.mapper.to_domain_event(notification)

    # -- loading ------------------------------------------------------------------------------
    def load(self, cls: type[A], aggregate_id: UUID, what: str, version: int | None = None) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id, version=version, projector_func=_project)
        except AggregateNotFoundError:
            raise NotFoundError(f"no {what} with id {aggregate_id}") from None
        if not isinstance(aggregate, cls):
            raise NotFoundError(f"no {what} with id {aggregate_id}")
        return aggregate

    @staticmethod
    def reads(read: Callable[[], A], authorize: Callable[[A], None] | None) -> Callable[[], A]:
        """The reads of a command's attempts, each passed to `authorize` (the caller's permission
        check, if any) so the decision is about the very version the command writes against.

        With `authorize`, the first read happens now, before the command checks its input (a
        caller without the right is refused before being told what is wrong with the body), and
        the command's first attempt takes it: one read of the aggregate instead of two. Later
        attempts (after a lost race) read afresh and are authorized again."""
        first: list[A] = []
        if authorize is not None:
            first.append(read())
            authorize(first[0])

        def next_read() -> A:
            if first:
                return first.pop()
            aggregate = read()
            if authorize is not None:
                authorize(aggregate)
            return aggregate

        return next_read

    @staticmethod
    def user_version(aggregate: Aggregate) -> int:
        """The version users see and compare (ETag / If-Match)."""
        return int(getattr(aggregate, "definition_version", aggregate.version))

    def current_version(self, aggregate_id: UUID) -> int | None:
        """The user-visible version of an aggregate now (None when there is no such aggregate)."""
        try:
            return self.user_version(self.repository.get(aggregate_id))
        except AggregateNotFoundError:
            return None

    @staticmethod
    def check_version(aggregate: Aggregate, expected: int | None, what: str) -> None:
        current = StagekeeperApplication.user_version(aggregate)
        if expected is not None and current != expected:
            raise PreconditionFailedError(
                f"{what} is at version {current}, not {expected} (If-Match); reload and retry",
                field="If-Match",
            )

    # -- saving -------------------------------------------------------------------------------
    def commit(self, *aggregates: Aggregate) -> int:
        """Save aggregates atomically; returns the last notification position written. The record
        of the request being served (Idempotency-Key) goes into its first write."""
        request = self.pending_request.get()
        record = request.record() if request is not None and not request.saved else None
        if record is not None:
            aggregates = (*aggregates, record)
        gate = self.gate_context.get()
        if gate is not None:
            aggregates = (*aggregates, *gate.joined({a.id for a in aggregates}))
        pending = [a for a in aggregates if a.pending_events]
        if not pending:
            return 0
        # What this write will store, kept before saving (saving takes the pending events): if
        # the outcome is unknown, its last event tells our own write apart from anybody else's.
        events = [e for a in pending for e in a.pending_events]
        request_id = current_request_id()
        if request_id is not None:
            # Metadata, not a field of the event's class: replay ignores it, the audit log keeps it.
            for pending_event in events:
                object.__setattr__(pending_event, "request_id", request_id)
        topics = [get_topic(type(e)) for e in events]
        started = time.monotonic()
        try:
            recordings = self.save(*pending)
            positions = tuple(r.notification.id for r in recordings)
            position = max(positions, default=0)
        except IntegrityError as error:
            if record is not None and request is not None and self._exists(record.id):
                # The same caller's same key took effect in another request meanwhile.
                request.duplicate = True
                raise DuplicateRequestError(
                    "a request with this Idempotency-Key took effect meanwhile", field="Idempotency-Key"
                ) from error
            raise
        except UnavailableError:
            # The connection was lost during or after COMMIT: the write may have landed. All of it
            # or none of it did (one transaction), so one event of it answers for the whole. (It is
            # encoded again only here: the encoding is deterministic, and a command that succeeds
            # does not pay for it twice.)
            mine = self.mapper.to_stored_event(events[-1])
            if not self._landed(mine, deadline=started + self.unavailable_seconds):
                raise
            # Its own notification id is not known any more; the head bounds it from above.
            position = self.head()
            positions = ()
        if request is not None:
            request.saved = True
        if gate is not None:
            gate.committed({a.id for a in pending})
        with self._listeners_lock:
            listeners = list(self._listeners)
            commit_listeners = list(self._commit_listeners)
        for listener in listeners:
            listener(position, topics)
        saved = Saved(position, positions, frozenset(a.id for a in pending), tuple(topics))
        for commit_listener in commit_listeners:
            commit_listener(saved)
        return position

    def _exists(self, aggregate_id: UUID) -> bool:
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    def existing(self, ids: list[UUID]) -> set[UUID]:
        """Which of these aggregates exist (in one read where the store allows it)."""
        recorder = self.recorder
        if isinstance(recorder, GuardedRecorder):
            return {UUID(str(i)) for i in recorder.existing(ids)}
        return {i for i in ids if recorder.select_events(i, limit=1)}

    # -- idempotent requests ----------------------------------------------------------------------
    def request_record(self, actor: str, key: str) -> RequestRecord | None:
        """What `actor` first used Idempotency-Key `key` for (None: never used)."""
        try:
            record: Aggregate = self.repository.get(RequestRecord.id_for(actor, key))
        except AggregateNotFoundError:
            return None
        assert isinstance(record, RequestRecord)
        return record

    def answer_request(self, actor: str, key: str, status: int, headers: dict[str, str], body: str) -> None:
        """Keep the answer given to the request that saved this key's record."""
        record = self.request_record(actor, key)
        if record is None or record.answered:
            return
        record.answer(status, headers, body)
        self.commit(record)

    def _landed(self, mine: StoredEvent, deadline: float) -> bool:
        """Whether `mine` is in the store; asks again while the store is unreachable, until `deadline`."""
        while True:
            try:
                found = self.recorder.select_events(
                    mine.originator_id, gt=mine.originator_version - 1, lte=mine.originator_version
                )
            except UnavailableError as error:
                if time.monotonic() >= deadline:
                    raise UnavailableError(
                        "the event store became unreachable while this change was being saved; whether it "
                        "was saved is unknown: read it back before trying again (or retry with the same "
                        "Idempotency-Key)"
                    ) from error
                time.sleep(0.2)
                continue
            return bool(found) and found[0].topic == mine.topic and found[0].state == mine.state

    def retrying(self, attempt: Callable[[], Outcome[R]]) -> Outcome[R]:
        """Run a read-decide-save attempt, again from a fresh read when another write won a race."""
        for tries in range(_ATTEMPTS):
            try:
                return attempt()
            except IntegrityError:
                time.sleep(random.uniform(0, _BACKOFF_SECONDS * 2 ** min(tries, 5)))
        raise ConcurrencyError("another change to the same object won a race; retry the command")

    # -- shared lookups --------------------------------------------------------------------------
    def catalogue(self) -> TemplateCatalogue:
        try:
            aggregate: Aggregate = self.repository.get(CATALOGUE_ID)
        except AggregateNotFoundError:
            return TemplateCatalogue()
        assert isinstance(aggregate, TemplateCatalogue)
        return aggregate

    def claim_name(self, kind: str, scope: str, name: str, owner_id: UUID) -> NameClaim:
        """A claim aggregate to save with the owner; raises ConflictError if the name is taken."""
        claim_id = NameClaim.id_for(kind, scope, name)
        try:
            claim: Aggregate = self.repository.get(claim_id)
        except AggregateNotFoundError:
            return NameClaim(kind=kind, scope=scope, name=name, owner_id=owner_id)
        assert isinstance(claim, NameClaim)
        claim.reclaim(owner_id, name)
        return claim

    def release_name(self, kind: str, scope: str, name: str) -> NameClaim | None:
        try:
            claim: Aggregate = self.repository.get(NameClaim.id_for(kind, scope, name))
        except AggregateNotFoundError:
            return None
        assert isinstance(claim, NameClaim)
        claim.release()
        return claim

    # -- refusals --------------------------------------------------------------------------------
    def record_refusal(self, command: str, code: str, message: str, actor: str, target_id: UUID | None = None) -> int:
        """Keep a refused command in the audit log (with the service it concerned, when known)."""
        service_id = self.service_of(target_id) if target_id is not None else None
        refusal = Refusal(
            command=command,
            code=code,
            service_id=service_id,
            target_id=target_id,
            actor=actor,
            reason=message,
        )
        return self.commit(refusal)

    def service_of(self, aggregate_id: UUID) -> UUID | None:
        """The service an aggregate belongs to (None for unknown or service-less objects)."""
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if isinstance(aggregate, Service):
            return aggregate.id
        service_id = getattr(aggregate, "service_id", None)
        return service_id if isinstance(service_id, UUID) else None

    # -- accounts -------------------------------------------------------------------------------
    def local_account(self, username: str) -> LocalAccount | None:
        try:
            account: Aggregate = self.repository.get(LocalAccount.id_for(username))
        except AggregateNotFoundError:
            return None
        assert isinstance(account, LocalAccount)
        return account

    def api_token(self, digest: str) -> ApiToken | None:
        try:
            token: Aggregate = self.repository.get(ApiToken.id_for(digest))
        except AggregateNotFoundError:
            return None
        assert isinstance(token, ApiToken)
        return token

    def definition_at(self, configuration_id: UUID, version: int) -> dict[str, Any]:
        configuration = self.load(Configuration, configuration_id, "configuration", version=version)
        if configuration.version != version:
            raise NotFoundError(f"configuration {configuration_id} has no version {version}", field="version")
        return configuration.definition()
