"""Authentication: HTTP Basic (local accounts) and Bearer (API tokens), with a short verified cache.

Password hashing (scrypt) costs tens of milliseconds by design, so a verified credential is
remembered for a short time (keyed by a SHA-256 of the secret, never the secret itself).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from dataclasses import dataclass

from domain.credentials import token_digest, verify_password
from domain.errors import AuthenticationError
from domain.stagekeeper import Stagekeeper


@dataclass(frozen=True)
class Principal:
    user: str
    is_admin: bool
    via: str  # "password" | "token"


class Authenticator:
    def __init__(self, app: Stagekeeper, cache_seconds: float, token_cache_seconds: float = 5.0) -> None:
        self.app = app
        self.cache_seconds = cache_seconds
        self.token_cache_seconds = min(token_cache_seconds, cache_seconds)
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
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + seconds, principal)

    def forget_all(self) -> None:
        """Drop cached verifications (after a revocation in this process)."""
        with self._lock:
            self._cache.clear()

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
        try:
            username, sep, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationError("malformed Basic credentials") from None
        if not sep:
            raise AuthenticationError("malformed Basic credentials")
        key = "b:" + hashlib.sha256(f"{username}\x00{password}".encode()).hexdigest()
        cached = self._cached(key)
        if cached is not None:
            return cached
        account = self.app.local_account(username)
        if account is None or not verify_password(password, account.password_hash):
            raise AuthenticationError("wrong username or password")
        principal = Principal(user=username, is_admin=True, via="password")
        self._remember(key, principal, self.cache_seconds)
        return principal

    def _bearer(self, token: str) -> Principal:
        digest = token_digest(token)
        key = "t:" + digest
        cached = self._cached(key)
        if cached is not None:
            return cached
        record = self.app.api_token(digest)
        if record is None or not record.valid_at(self.app.clock.now()):
            raise AuthenticationError("invalid, expired or revoked token")
        owner = self.app.local_account(record.user)
        principal = Principal(user=record.user, is_admin=owner is not None, via="token")
        self._remember(key, principal, self.token_cache_seconds)
        return principal
