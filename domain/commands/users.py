"""Local users and groups: created, changed, locked out and unlocked by administrators; each step
an event of the user's LocalAccount (the break-glass `admin` is one too)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from domain.accounts import LocalAccount
from domain.application import Outcome, StagekeeperApplication
from domain.credentials import hash_password, verify_password
from domain.errors import ConflictError, NotFoundError, ValidationError
from domain.local_users import LockoutPolicy, check_groups, check_password, check_username
from domain.text import check_optional_text, check_reason

LOCAL_ADMIN = "admin"
_MAX_TRACKED = 10_000


class FailedLogins:
    """Recent failed password checks per local user, in this process (bounded): enough failures
    within the window lock the account (an event every process honours)."""

    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def add(self, username: str, window_seconds: float) -> int:
        moment = time.monotonic()
        with self._lock:
            if len(self._failures) > _MAX_TRACKED:
                self._failures.clear()
            recent = [t for t in self._failures.get(username, []) if moment - t < window_seconds]
            recent.append(moment)
            self._failures[username] = recent
            return len(recent)

    def clear(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)


class UserCommands(StagekeeperApplication):
    lockout_policy = LockoutPolicy()

    def _failed_logins(self) -> FailedLogins:
        found: FailedLogins | None = getattr(self, "_failed_login_counts", None)
        if found is None:
            found = FailedLogins()
            self._failed_login_counts = found
        return found

    def local_user(self, username: str) -> LocalAccount:
        """The local user named `username`; NotFoundError when there is none."""
        account = self.local_account(username)
        if account is None:
            raise NotFoundError(f"no local user named {username!r}", field="username")
        return account

    def create_user(
        self,
        username: object,
        password: object,
        groups: object,
        display_name: object,
        actor: str,
        reason: str | None = None,
    ) -> Outcome[LocalAccount]:
        name = check_username(username)
        if name == LOCAL_ADMIN:
            raise ConflictError("the local admin exists already; set its password with STAGEKEEPER_ADMIN_PASSWORD")
        secret = check_password(password, name)
        members = check_groups([] if groups is None else groups)
        shown = check_optional_text(display_name, "display_name", max_length=200) or ""
        reason = check_reason(reason)

        def attempt() -> Outcome[LocalAccount]:
            if self.local_account(name) is not None:
                raise ConflictError(f"a local user named {name!r} exists already", field="username")
            account = LocalAccount(username=name, password_hash=hash_password(secret), actor=actor)
            account.change_profile(members, shown, actor, reason)
            return Outcome(account, self.commit(account))

        return self.retrying(attempt)

    def change_user(
        self,
        username: str,
        actor: str,
        *,
        password: object = None,
        groups: object = None,
        display_name: object = None,
        disabled: object = None,
        reason: str | None = None,
    ) -> Outcome[LocalAccount]:
        reason = check_reason(reason)
        if username == LOCAL_ADMIN and (groups is not None or disabled is not None):
            raise ValidationError("the local admin's groups and state are fixed", field="username")
        secret = check_password(password, username) if password is not None else None
        members = check_groups(groups) if groups is not None else None
        shown = check_optional_text(display_name, "display_name", max_length=200)
        if disabled is not None and not isinstance(disabled, bool):
            raise ValidationError("disabled must be true or false", field="disabled")

        def attempt() -> Outcome[LocalAccount]:
            account = self.local_user(username)
            if secret is not None:
                account.change_password(hash_password(secret), actor=actor)
            if members is not None or shown is not None:
                new_groups = members if members is not None else account.groups
                new_name = shown if shown is not None else account.display_name
                if (new_groups, new_name) != (account.groups, account.display_name):
                    account.change_profile(new_groups, new_name, actor, reason)
            if disabled is not None and disabled != account.disabled:
                account.set_disabled(disabled, actor, reason)
            return Outcome(account, self.commit(account))

        return self.retrying(attempt)

    def change_own_password(self, username: str, current: object, new: object) -> Outcome[LocalAccount]:
        """The current password is checked as a sign-in is: while the account is locked no guess is
        checked (409), and a wrong one counts towards the lockout (LockedOut is audited)."""
        account = self.local_user(username)
        if username != LOCAL_ADMIN and account.locked_at(self.clock.now()):
            until = account.locked_until.strftime("%Y-%m-%d %H:%M UTC") if account.locked_until else "later"
            raise ConflictError(
                f"this account is locked until {until} after repeated wrong passwords; an administrator can unlock it",
                field="current_password",
            )
        if not isinstance(current, str) or not verify_password(current, account.password_hash):
            if username != LOCAL_ADMIN:  # the break-glass admin is never locked, as at sign-in
                self.record_failed_login(account)
            raise ValidationError("the current password is wrong", field="current_password")
        secret = check_password(new, username, field="new_password")
        account.change_password(hash_password(secret), actor=username)
        return Outcome(account, self.commit(account))

    def unlock_user(self, username: str, actor: str, reason: str | None = None) -> Outcome[LocalAccount]:
        reason = check_reason(reason)

        def attempt() -> Outcome[LocalAccount]:
            account = self.local_user(username)
            account.unlock(actor, reason)
            self._failed_logins().clear(username)
            return Outcome(account, self.commit(account))

        return self.retrying(attempt)

    def record_failed_login(self, account: LocalAccount) -> bool:
        """Count a wrong password; True when this failure locked the account (LockedOut written)."""
        policy = self.lockout_policy
        failures = self._failed_logins().add(account.username, policy.window_seconds)
        if failures < policy.failures or account.locked_at(self.clock.now()):
            return False
        account.lock_out(failures, self.clock.now() + timedelta(seconds=policy.lock_seconds), actor="stagekeeper")
        try:
            self.commit(account)
        except Exception:
            return False
        self._failed_logins().clear(account.username)
        return True

    def record_good_login(self, username: str) -> None:
        self._failed_logins().clear(username)
