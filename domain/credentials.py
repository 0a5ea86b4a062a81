"""Password and token hashing (pure computation: stdlib scrypt and SHA-256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
# A hash no password matches (its digest is all zeros), with the same cost parameters as real
# ones: failed logins that have no hash of their own verify against it, so an unknown user, a
# wrong directory password and a wrong local password all cost the same scrypt work.
UNMATCHABLE_HASH = (
    f"scrypt${_N}${_R}${_P}${base64.b64encode(bytes(16)).decode()}${base64.b64encode(bytes(32)).decode()}"
)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def spend_verification(password: str) -> None:
    """Do the work of one password verification that cannot succeed (equal timing for failures)."""
    verify_password(password, UNMATCHABLE_HASH)


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = encoded.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def new_token() -> str:
    """An API token: 'skt_' + 43 url-safe characters (256 bits)."""
    return "skt_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    # Tokens carry 256 bits of entropy, so a fast hash is enough (no brute force possible).
    return hashlib.sha256(token.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(18)
