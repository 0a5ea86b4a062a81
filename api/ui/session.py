"""The console's session: a signed cookie carrying who signed in, a CSRF token and when it was
last used.

The cookie is HMAC-SHA256 signed (never encrypted: it holds nothing secret, only the user's
name and groups as the directory gave them at sign-in). It is HttpOnly and SameSite=Strict, and
expires after `session_idle_minutes` without a request. The signing key comes from
`STAGEKEEPER_SESSION_SECRET`, or is generated once and kept in the database, so restarts and
several processes behind one address accept each other's cookies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace

from starlette.responses import Response

from api.auth import Principal
from projections.store import ReadStore

COOKIE = "sk_session"
LOGIN_COOKIE = "sk_login_csrf"
# Re-sign the cookie (moving its idle deadline) at most this often, not on every request.
REFRESH_SECONDS = 60.0


def stored_secret(store: ReadStore) -> bytes:
    """The database's signing key, created by whichever process asks first."""
    with store.transaction() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS sk_console_secret (id INTEGER PRIMARY KEY, secret TEXT NOT NULL)")
        cursor.execute(
            "INSERT INTO sk_console_secret (id, secret) VALUES (1, %s) ON CONFLICT (id) DO NOTHING",
            (secrets.token_hex(32),),
        )
    rows = store.query("SELECT secret FROM sk_console_secret WHERE id = 1")
    return bytes.fromhex(str(rows[0]["secret"]))


@dataclass(frozen=True)
class Session:
    user: str
    is_admin: bool
    via: str
    groups: frozenset[str]
    display_name: str
    csrf: str
    last_seen: float
    groups_checked: float = 0.0  # when the directory last confirmed the groups
    # Local accounts: which password the session was opened with (password_generation); a session
    # whose account has another password since is ended (api/ui/context.py).
    password: str = ""

    @property
    def principal(self) -> Principal:
        return Principal(
            user=self.user, is_admin=self.is_admin, via=f"console:{self.via}", groups=self.groups,
            display_name=self.display_name,
        )  # fmt: skip

    @classmethod
    def start(cls, principal: Principal, now: float, password: str = "") -> Session:
        return cls(
            user=principal.user, is_admin=principal.is_admin, via=principal.via, groups=principal.groups,
            display_name=principal.display_name, csrf=secrets.token_urlsafe(32), last_seen=now,
            groups_checked=now, password=password,
        )  # fmt: skip


def password_generation(password_hash: str) -> str:
    """A local account's password as sessions know it: a one-way digest of its (salted) hash, so it
    changes with every new password and the cookie tells nothing about the password."""
    return hashlib.sha256(b"stagekeeper-session-password\x00" + password_hash.encode()).hexdigest()[:32]


class SessionCodec:
    """Signs, checks and expires session cookies."""

    def __init__(self, secret: bytes, idle_seconds: float) -> None:
        self._key = hashlib.sha256(b"stagekeeper-console-session\x00" + secret).digest()
        self.idle_seconds = idle_seconds

    def _sign(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, payload, hashlib.sha256).digest()).decode().rstrip("=")

    def encode(self, session: Session) -> str:
        data = {
            "u": session.user, "a": session.is_admin, "v": session.via, "g": sorted(session.groups),
            "d": session.display_name, "c": session.csrf, "t": session.last_seen, "k": session.groups_checked,
            "p": session.password,
        }  # fmt: skip
        payload = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + self._sign(payload)

    def decode(self, cookie: str | None, now: float) -> Session | None:
        """The session, or None when the cookie is missing, forged or idle too long."""
        if not cookie or "." not in cookie:
            return None
        body, _, signature = cookie.rpartition(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            return None
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        data = json.loads(payload)
        session = Session(
            user=data["u"], is_admin=bool(data["a"]), via=data["v"], groups=frozenset(data["g"]),
            display_name=data["d"], csrf=data["c"], last_seen=float(data["t"]), groups_checked=float(data["k"]),
            password=str(data.get("p", "")),
        )  # fmt: skip
        if now - session.last_seen > self.idle_seconds:
            return None
        return session

    def touch(self, session: Session, now: float, changed: bool = False) -> Session | None:
        """A re-dated session when the cookie should be re-sent, else None."""
        if not changed and now - session.last_seen < REFRESH_SECONDS:
            return None
        return replace(session, last_seen=now)

    def set_cookie(self, response: Response, session: Session, secure: bool) -> None:
        """`secure` when the request came over HTTPS (a cookie marked Secure is never sent over HTTP)."""
        response.set_cookie(
            COOKIE, self.encode(session), max_age=int(self.idle_seconds), path="/", httponly=True,
            samesite="strict", secure=secure,
        )  # fmt: skip

    def clear_cookie(self, response: Response, secure: bool) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure)


def now() -> float:
    return time.time()
