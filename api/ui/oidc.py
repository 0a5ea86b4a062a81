"""Single sign-on for the console: /ui/oidc/login starts the authorization code flow (PKCE S256,
state, nonce) at the OpenID Connect provider, /ui/oidc/callback finishes it and opens a console
session (via "oidc", the groups from the ID token).

The attempt's state, nonce and PKCE verifier wait in a signed cookie (HttpOnly, SameSite=Lax: the
provider's redirect back is a cross-site navigation, which a Strict cookie would not follow) that
lives ten minutes and is good for one callback. Every refusal is a page saying why and an audited
`Refusal.Recorded`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from adapters.oidc import OidcProvider, Pending, ProviderError, TokenError
from adapters.runtime import Runtime
from api.auth import Principal
from api.ui.context import ConsoleRoute, console_of, render, runtime_of
from api.ui.session import Session, now, stored_secret
from api.ui.signin import _safe_next
from domain.sso import SignInRefusedError, SsoPolicy

router = APIRouter(prefix="/ui/oidc", route_class=ConsoleRoute, include_in_schema=False)

PENDING_COOKIE = "sk_oidc"
PENDING_SECONDS = 600
COMMAND = "oidc sign-in"


@dataclass(frozen=True)
class SingleSignOn:
    provider: OidcProvider
    policy: SsoPolicy
    key: bytes
    groups_claim: str
    redirect_base: str | None

    def sign(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self.key, payload, hashlib.sha256).digest()).decode().rstrip("=")


def single_sign_on(request: Request) -> SingleSignOn | None:
    """The app's single sign-on, built at first use (None when no provider is configured)."""
    runtime = runtime_of(request)
    settings = runtime.settings
    if settings.oidc_issuer is None or settings.oidc_client_id is None or settings.oidc_client_secret is None:
        return None
    # Built once per app; two first requests at once may both build it, which is harmless (the
    # stored secret is created once, and both copies are equal).
    built: SingleSignOn | None = getattr(request.app.state, "sso", None)
    if built is None:
        secret = settings.session_secret.encode() if settings.session_secret else stored_secret(runtime.store)
        built = SingleSignOn(
            provider=OidcProvider(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret),
            policy=SsoPolicy(
                allowed_groups=settings.oidc_allowed,
                admin_group=settings.oidc_admin_group,
                default_group=settings.oidc_default_group,
            ),
            key=hashlib.sha256(b"stagekeeper-oidc-pending\x00" + secret).digest(),
            groups_claim=settings.oidc_groups_claim,
            redirect_base=settings.oidc_redirect_base_url,
        )
        request.app.state.sso = built
    return built


def _moment(request: Request) -> float:
    """Now, from the domain's clock (the attempt's ten minutes, the ID token's lifetime)."""
    return runtime_of(request).app.clock.now().timestamp()


def _redirect_uri(request: Request, sso: SingleSignOn) -> str:
    base = sso.redirect_base or str(request.base_url)
    return base.rstrip("/") + "/ui/oidc/callback"


def _pending_cookie(sso: SingleSignOn, pending: Pending, target: str, moment: float) -> str:
    data = {"s": pending.state, "n": pending.nonce, "v": pending.verifier, "next": target, "t": moment}
    payload = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + sso.sign(payload)


def _read_pending(sso: SingleSignOn, cookie: str | None, moment: float) -> tuple[Pending, str] | None:
    if not cookie or "." not in cookie or len(cookie) > 4096:
        return None
    body, _, signature = cookie.rpartition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        return None
    if not hmac.compare_digest(sso.sign(payload), signature):
        return None
    data = json.loads(payload)
    if not 0 <= moment - float(data["t"]) <= PENDING_SECONDS:
        return None
    return Pending(state=data["s"], nonce=data["n"], verifier=data["v"]), _safe_next(data["next"])


def _refused(request: Request, code: str, message: str, status: int, user: str | None = None) -> Response:
    """A page naming why, and the refusal in the audit log (the user when the provider named one)."""
    runtime: Runtime = runtime_of(request)
    if status not in (404, 503):  # not configured or the provider down: nobody was refused
        runtime.app.record_refusal(COMMAND, code, message, user or "anonymous")
    response = render(request, "oidc_refused.html", {"title": "Sign-in refused", "message": message}, status)
    response.delete_cookie(PENDING_COOKIE, path="/ui/oidc", httponly=True, samesite="lax")
    return response


@router.get("/login")
def oidc_login(request: Request, next: Annotated[str | None, Query(max_length=2048)] = None) -> Response:
    """Start the authorization code flow at the provider."""
    sso = single_sign_on(request)
    if sso is None:
        return _refused(request, "not_configured", "Single sign-on is not configured on this server.", 404)
    pending = Pending.new()
    try:
        url = sso.provider.authorization_url(pending, _redirect_uri(request, sso), "openid profile groups")
    except ProviderError as error:
        return _refused(request, "provider_unavailable", f"Single sign-on is unavailable: {error}", 503)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        PENDING_COOKIE, _pending_cookie(sso, pending, _safe_next(next), _moment(request)), max_age=PENDING_SECONDS,
        path="/ui/oidc", httponly=True, samesite="lax", secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.get("/callback")
def oidc_callback(
    request: Request,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
    error_description: Annotated[str | None, Query(max_length=1024)] = None,
    iss: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    """Finish the flow: check the state, exchange the code, verify the ID token, open a session."""
    sso = single_sign_on(request)
    if sso is None:
        return _refused(request, "not_configured", "Single sign-on is not configured on this server.", 404)
    found = _read_pending(sso, request.cookies.get(PENDING_COOKIE), _moment(request))
    if found is None:
        return _refused(
            request, "sign_in_expired",
            "This sign-in was not started in this browser or took longer than ten minutes. Start again.", 403,
        )  # fmt: skip
    pending, target = found
    if state is None or not hmac.compare_digest(state.encode(), pending.state.encode()):
        return _refused(request, "state_mismatch", "The provider's answer does not belong to this sign-in.", 403)
    if iss is not None and iss.rstrip("/") != sso.provider.issuer:
        # RFC 9207: an answer from another provider the browser was sent to (a mix-up attack).
        return _refused(request, "issuer_mismatch", f"The answer came from another provider ({iss[:200]}).", 403)
    if error is not None or code is None:
        reason = (error_description or error or "no authorization code")[:300]
        return _refused(request, "provider_refused", f"The sign-in provider refused: {reason}", 403)
    try:
        id_token = sso.provider.exchange(code, pending, _redirect_uri(request, sso))
        claims = sso.provider.verify(id_token, pending.nonce, int(_moment(request)))
        user = sso.policy.admit(
            claims.get("sub"), claims.get("preferred_username"), claims.get("name"), claims.get(sso.groups_claim)
        )
    except ProviderError as failure:
        return _refused(request, "provider_unavailable", f"Single sign-on is unavailable: {failure}", 503)
    except TokenError as failure:
        return _refused(request, "bad_token", f"The sign-in could not be verified: {failure}", 401)
    except SignInRefusedError as refusal:
        return _refused(request, refusal.code, f"Sign-in refused: {refusal.message}", 403, refusal.user)
    principal = Principal(
        user=user.user, is_admin=user.is_admin, via="oidc", groups=user.groups, display_name=user.display_name
    )
    session = Session.start(principal, now())
    # A page that moves on by itself rather than a redirect: this answer ends a navigation the
    # provider started, and the SameSite=Strict session cookie is only sent once the console
    # itself navigates.
    response = render(request, "oidc_done.html", {"title": "Signed in", "target": target})
    secure = request.url.scheme == "https"
    console_of(request).codec.set_cookie(response, session, secure=secure)
    response.delete_cookie(PENDING_COOKIE, path="/ui/oidc", httponly=True, samesite="lax", secure=secure)
    return response
