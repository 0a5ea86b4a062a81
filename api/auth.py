"""Authentication: HTTP Basic (directory users, or the local break-glass admin) and Bearer
API tokens, with a short cache of verified credentials.

Password checks (scrypt for local accounts, an LDAP bind for directory users) cost tens of
milliseconds by design, so a verified credential is remembered briefly, keyed by a SHA-256 of
the secret, never the secret itself. A directory that cannot be reached gives 503 for password
logins; tokens keep working with the groups known when they were issued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from dataclasses import dataclass, field

from domain.accounts import LocalAccount
from domain.credentials import spend_verification, token_digest, verify_password
from domain.errors import AuthenticationError, UnavailableError
from domain.local_users import group_dn, is_local_admin
from domain.permissions import Caller
from domain.ports import Directory
from domain.sso import admin_from_groups, is_sso_user
from domain.stagekeeper import Stagekeeper
from domain.values import normalise_key

LOCAL_ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    user: str
    is_admin: bool
    via: str  # "password" | "token" | "local"
    groups: frozenset[str] = field(default_factory=frozenset)
    display_name: str = ""

    @property
    def caller(self) -> Caller:
        return Caller(user=self.user, groups=self.groups, is_admin=self.is_admin)


class Authenticator:
    def __init__(
        self,
        app: Stagekeeper,
        cache_seconds: float,
        directory: Directory | None = None,
        admin_group: str | None = None,
        local_admin_enabled: bool = True,
        token_cache_seconds: float = 5.0,
        sso_enabled: bool = False,
        sso_admin_group: str | None = None,
    ) -> None:
        self.app = app
        self.cache_seconds = cache_seconds
        self.directory = directory
        self.admin_group = normalise_key(admin_group) if admin_group else None
        self.local_admin_enabled = local_admin_enabled
        self.token_cache_seconds = min(token_cache_seconds, cache_seconds)
        self.sso_enabled = sso_enabled
        self.sso_admin_group = sso_admin_group
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: str) -> Principal | None:
        with self._lock:
            entry = self._cache.get(key)
            if entry and entry[0] > time.monotonic():
                return entry[1]
            self._cache.pop(key, None)
            return None

    def _remember(self, key: str, principal: Principal, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + seconds, principal)

    def forget_all(self) -> None:
        """Drop cached verifications (after a revocation in this process)."""
        with self._lock:
            self._cache.clear()

    def _is_admin(self, groups: frozenset[str]) -> bool:
        return self.admin_group is not None and self.admin_group in {normalise_key(g) for g in groups}

    def cached(self, authorization: str | None) -> Principal | None:
        """The principal these credentials were verified as within the cache time, or None (not
        cached, expired, malformed: `authenticate` decides). No I/O and no password hashing, so the
        event loop may call it; only a miss needs a worker thread."""
        if not authorization:
            return None
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "basic":
            parsed = _basic_credentials(credentials.strip())
            return self._cached(_basic_key(*parsed)) if parsed is not None else None
        if scheme.lower() == "bearer":
            return self._cached("t:" + token_digest(credentials.strip()))
        return None

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthenticationError("authentication required: use HTTP Basic or a Bearer token")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "basic":
            return self._basic(credentials.strip())
        if scheme.lower() == "bearer":
            return self._bearer(credentials.strip())
        raise AuthenticationError(f"unsupported authorization scheme '{scheme}'; use Basic or Bearer")

    def _basic(self, credentials: str) -> Principal:
        parsed = _basic_credentials(credentials)
        if parsed is None:
            raise AuthenticationError("malformed Basic credentials")
        username, password = parsed
        key = _basic_key(username, password)
        cached = self._cached(key)
        if cached is not None:
            return cached
        # Every failure costs the same: one scrypt verification (the local account's own hash, or
        # one no password matches) after the same directory lookup, so timing does not tell an
        # unknown user from a wrong password, or a directory user from the local admin.
        account = self._local_account(username)
        principal = None
        if account is not None:
            if username != LOCAL_ADMIN and account.locked_at(self.app.clock.now()):
                spend_verification(password)
                until = account.locked_until.strftime("%Y-%m-%d %H:%M UTC") if account.locked_until else "later"
                raise AuthenticationError(
                    f"this account is locked until {until} after repeated wrong passwords; an administrator can "
                    "unlock it"
                )
            if verify_password(password, account.password_hash):
                principal = self._local_principal(account)
                self.app.record_good_login(username)
            elif username != LOCAL_ADMIN:
                # The break-glass admin is never locked out (that would lock administrators out).
                self.app.record_failed_login(account)
        if principal is None and self.directory is not None:
            user = self.directory.authenticate(username, password)
            if user is not None:
                principal = Principal(
                    user=user.username, is_admin=self._is_admin(user.groups), via="password", groups=user.groups,
                    display_name=user.display_name,
                )  # fmt: skip
        if principal is None:
            if account is None:
                spend_verification(password)
            raise AuthenticationError("wrong username or password")
        self._remember(key, principal, self.cache_seconds)
        return principal

    def _local_account(self, username: str) -> LocalAccount | None:
        """The local account that may sign in with this name: the admin (unless disabled by a
        directory set-up), or an enabled local user."""
        if username == LOCAL_ADMIN:
            return self.app.local_account(username) if self.local_admin_enabled else None
        if len(username) > 64:
            return None
        account = self.app.local_account(username)
        return account if account is not None and not account.disabled else None

    def _local_principal(self, account: LocalAccount, via: str = "local") -> Principal:
        if account.username == LOCAL_ADMIN:
            return Principal(user=LOCAL_ADMIN, is_admin=True, via=via, display_name="local administrator")
        return Principal(
            user=account.username, is_admin=is_local_admin(account.groups), via=via,
            groups=frozenset(group_dn(g) for g in account.groups), display_name=account.display_name,
        )  # fmt: skip

    def _bearer(self, token: str) -> Principal:
        digest = token_digest(token)
        key = "t:" + digest
        cached = self._cached(key)
        if cached is not None:
            return cached
        record = self.app.api_token(digest)
        if record is None or not record.valid_at(self.app.clock.now()):
            raise AuthenticationError("invalid, expired or revoked token")
        local = self.app.local_account(record.user) if len(record.user) <= 64 else None
        if record.user == LOCAL_ADMIN and local is not None:
            if not self.local_admin_enabled:
                raise AuthenticationError("the local admin account is disabled")
            principal = Principal(user=record.user, is_admin=True, via="token")
        elif local is not None:
            if local.disabled:
                raise AuthenticationError(f"the owner of this token ({record.user}) is disabled")
            principal = self._local_principal(local, via="token")
        elif is_sso_user(record.user):
            principal = self._sso_token_principal(record.user, frozenset(record.groups))
        else:
            groups: frozenset[str] | None = frozenset(record.groups)
            if self.directory is not None:
                try:
                    groups = self.directory.groups(record.user)
                except UnavailableError:
                    groups = frozenset(record.groups)  # the directory is down: tokens keep working
            if groups is None:
                raise AuthenticationError(f"the owner of this token ({record.user}) is no longer in the directory")
            principal = Principal(user=record.user, is_admin=self._is_admin(groups), via="token", groups=groups)
        self._remember(key, principal, self.token_cache_seconds)
        return principal

    def _sso_token_principal(self, user: str, groups: frozenset[str]) -> Principal:
        """A single sign-on user's token: no directory knows them, so it keeps the groups the
        provider sent when it was issued; it stops when single sign-on is switched off."""
        if not self.sso_enabled:
            raise AuthenticationError(f"single sign-on is not configured, so {user}'s tokens do not work")
        is_admin = admin_from_groups(groups, self.sso_admin_group)
        return Principal(user=user, is_admin=is_admin, via="token", groups=groups)


def _basic_credentials(credentials: str) -> tuple[str, str] | None:
    """(username, password) from a Basic credential, or None when it is malformed."""
    try:
        username, sep, password = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def _basic_key(username: str, password: str) -> str:
    return "b:" + hashlib.sha256(f"{username}\x00{password}".encode()).hexdigest()
