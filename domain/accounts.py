"""Local accounts (the break-glass `admin`) and API tokens; secrets are stored hashed only."""

from __future__ import annotations

from datetime import datetime
from typing import cast
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransitionError

_NS = uuid5(NAMESPACE_URL, "https://stagekeeper.invalid/accounts")


class LocalAccount(Aggregate):
    TOPIC = "stagekeeper:LocalAccount"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:LocalAccount.Created"

    @staticmethod
    def create_id(username: str, password_hash: str, actor: str) -> UUID:
        return LocalAccount.id_for(username)

    @staticmethod
    def id_for(username: str) -> UUID:
        return uuid5(_NS, f"local:{username}")

    @event("Opened", topic="stagekeeper:LocalAccount.Opened")
    def __init__(self, username: str, password_hash: str, actor: str) -> None:
        self.username = username
        self.password_hash = password_hash

    def change_password(self, password_hash: str, actor: str) -> None:
        self._password_changed(password_hash=password_hash, actor=actor)

    @event("PasswordChanged", topic="stagekeeper:LocalAccount.PasswordChanged")
    def _password_changed(self, password_hash: str, actor: str) -> None:
        self.password_hash = password_hash
        # A new password ends a lockout (an administrator set it, or the user proved the old one).
        self.locked_until = None

    # -- local users beyond the break-glass admin (domain/local_users.py holds the rules) -------
    # Attributes absent from accounts opened before these events existed read as their defaults.
    # Unannotated (annotations would make them dataclass fields of the Opened event); the groups'
    # default is an empty tuple nobody can mutate, read as an empty list.
    groups = cast("list[str]", ())
    display_name = ""
    disabled = False
    locked_until = cast("datetime | None", None)

    def change_profile(self, groups: list[str], display_name: str, actor: str, reason: str | None) -> None:
        self._profile_changed(groups=list(groups), display_name=display_name, actor=actor, reason=reason)

    @event("ProfileChanged", topic="stagekeeper:LocalAccount.ProfileChanged")
    def _profile_changed(self, groups: list[str], display_name: str, actor: str, reason: str | None) -> None:
        self.groups = list(groups)
        self.display_name = display_name

    def lock_out(self, failures: int, until: datetime, actor: str) -> None:
        self._locked_out(failures=failures, until=until, actor=actor)

    @event("LockedOut", topic="stagekeeper:LocalAccount.LockedOut")
    def _locked_out(self, failures: int, until: datetime, actor: str) -> None:
        self.locked_until = until

    def unlock(self, actor: str, reason: str | None) -> None:
        if self.locked_until is None:
            raise InvalidTransitionError(f"{self.username} is not locked")
        self._unlocked(actor=actor, reason=reason)

    @event("Unlocked", topic="stagekeeper:LocalAccount.Unlocked")
    def _unlocked(self, actor: str, reason: str | None) -> None:
        self.locked_until = None

    def set_disabled(self, disabled: bool, actor: str, reason: str | None) -> None:
        if disabled == self.disabled:
            raise InvalidTransitionError(f"{self.username} is already {'disabled' if disabled else 'enabled'}")
        if disabled:
            self._disabled(actor=actor, reason=reason)
        else:
            self._enabled(actor=actor, reason=reason)

    @event("Disabled", topic="stagekeeper:LocalAccount.Disabled")
    def _disabled(self, actor: str, reason: str | None) -> None:
        self.disabled = True

    @event("Enabled", topic="stagekeeper:LocalAccount.Enabled")
    def _enabled(self, actor: str, reason: str | None) -> None:
        self.disabled = False

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


class ApiToken(Aggregate):
    """A bearer token. The id is derived from the token's digest, so lookup needs no index."""

    TOPIC = "stagekeeper:ApiToken"

    class Created(Aggregate.Created):
        TOPIC = "stagekeeper:ApiToken.Created"

    @staticmethod
    def create_id(digest: str, user: str, name: str, expires_at: datetime, groups: list[str], actor: str) -> UUID:
        return ApiToken.id_for(digest)

    @staticmethod
    def id_for(digest: str) -> UUID:
        return uuid5(_NS, f"token:{digest}")

    @event("Issued", topic="stagekeeper:ApiToken.Issued")
    def __init__(self, digest: str, user: str, name: str, expires_at: datetime, groups: list[str], actor: str) -> None:
        # The digest is only used to derive the id; keeping a prefix lets users tell tokens apart.
        self.hint = digest[:8]
        self.user = user
        self.name = name
        self.expires_at = expires_at
        # The owner's groups when the token was issued: used while the directory is unreachable.
        self.groups = list(groups)
        self.revoked = False

    def revoke(self, actor: str, reason: str | None) -> None:
        if self.revoked:
            raise InvalidTransitionError("token already revoked")
        self._revoked(actor=actor, reason=reason)

    @event("Revoked", topic="stagekeeper:ApiToken.Revoked")
    def _revoked(self, actor: str, reason: str | None) -> None:
        self.revoked = True

    def valid_at(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at
