"""An OpenID Connect provider, as the console's sign-in uses it: discovery, the authorization URL
(code flow with PKCE S256, state and nonce), the code exchange and the ID token's verification.

Translation only: authlib makes the PKCE challenge and the random values, joserfc (authlib's JOSE
library) verifies the ID token's signature against the provider's JWKS and checks iss, aud, exp,
iat and nonce. Whether the user may sign in is decided in domain/sso.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

# Asymmetric algorithms only: a provider's JWKS is public, an HS256 token proves nothing.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
DISCOVERY_SECONDS = 300.0
LEEWAY_SECONDS = 60


class ProviderError(Exception):
    """The provider could not be reached or answered something unusable."""


class TokenError(Exception):
    """The ID token failed verification (signature, issuer, audience, expiry or nonce)."""


@dataclass(frozen=True)
class Pending:
    """What one sign-in attempt keeps until the provider redirects back."""

    state: str
    nonce: str
    verifier: str

    @classmethod
    def new(cls) -> Pending:
        return cls(state=generate_token(43), nonce=generate_token(43), verifier=generate_token(64))


class OidcProvider:
    def __init__(self, issuer: str, client_id: str, client_secret: str, timeout: float = 10.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._timeout = timeout
        self._lock = threading.Lock()
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: KeySet | None = None

    def _get(self, url: str) -> dict[str, Any]:
        try:
            response = httpx.get(url, timeout=self._timeout)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ProviderError(f"the sign-in provider did not answer {url}: {error}") from None
        if not isinstance(body, dict):
            raise ProviderError(f"the sign-in provider answered {url} with something other than a JSON object")
        return body

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (kept for a few minutes)."""
        with self._lock:
            if self._metadata and self._metadata[0] > time.monotonic():
                return self._metadata[1]
        body = self._get(self.issuer + "/.well-known/openid-configuration")
        if str(body.get("issuer", "")).rstrip("/") != self.issuer:
            raise ProviderError(f"the discovery document names issuer {body.get('issuer')!r}, not {self.issuer!r}")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(body.get(key), str):
                raise ProviderError(f"the discovery document has no {key}")
        with self._lock:
            self._metadata = (time.monotonic() + DISCOVERY_SECONDS, body)
        return body

    def authorization_url(self, pending: Pending, redirect_uri: str, scope: str) -> str:
        params = [
            ("response_type", "code"),
            ("client_id", self.client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", pending.state),
            ("nonce", pending.nonce),
            ("code_challenge", create_s256_code_challenge(pending.verifier)),
            ("code_challenge_method", "S256"),
        ]
        url: str = add_params_to_uri(self.metadata()["authorization_endpoint"], params)
        return url

    def exchange(self, code: str, pending: Pending, redirect_uri: str) -> str:
        """The ID token the token endpoint gives for `code` (client_secret_basic, with the PKCE verifier)."""
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pending.verifier,
        }
        try:
            response = httpx.post(
                self.metadata()["token_endpoint"], data=data, auth=(self.client_id, self._secret), timeout=self._timeout
            )
        except httpx.HTTPError as error:
            raise ProviderError(f"the sign-in provider's token endpoint did not answer: {error}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            detail = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
            raise TokenError(f"the provider refused the authorization code ({response.status_code}: {detail})")
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or len(id_token) > 65_536:
            raise TokenError("the provider's token response holds no ID token")
        return id_token

    def _key_set(self, refresh: bool) -> KeySet:
        with self._lock:
            if self._keys is not None and not refresh:
                return self._keys
        body = self._get(self.metadata()["jwks_uri"])
        try:
            keys = KeySet.import_key_set(body)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as error:
            raise ProviderError(f"the provider's JWKS is unusable: {error}") from None
        with self._lock:
            self._keys = keys
        return keys

    def verify(self, id_token: str, nonce: str, now: int) -> dict[str, Any]:
        """The ID token's claims once its signature (the provider's JWKS), issuer, audience,
        expiry, issue time and nonce are right; else TokenError."""
        try:
            try:
                token = jwt.decode(id_token, self._key_set(refresh=False), algorithms=ALGORITHMS)
            except JoseError:
                # The provider may have rotated its keys since they were fetched: once more, fresh.
                token = jwt.decode(id_token, self._key_set(refresh=True), algorithms=ALGORITHMS)
            registry = jwt.JWTClaimsRegistry(
                now=now,
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(token.claims)
        except (JoseError, ValueError) as error:
            raise TokenError(f"the ID token did not verify: {error}") from None
        claims = dict(token.claims)
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.client_id:
            raise TokenError("the ID token has several audiences and its azp is not this client")
        return claims
