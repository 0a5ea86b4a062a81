"""Sign in and sign out, through the same Authenticator as the API."""

from __future__ import annotations

import base64
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from api.auth import Authenticator
from api.ui.context import CheckedDep, ConsoleRoute, console_of, render
from api.ui.session import LOGIN_COOKIE, Session, now, password_generation
from domain.errors import AuthenticationError, UnavailableError

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only somewhere inside the console: never an open redirect to another site.
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


def _login_page(request: Request, target: str, username: str = "", message: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"title": "Sign in", "next": target, "username": username, "message": message, "login_csrf": token}
        | {"oidc_provider": _oidc_provider(request)},
        status,
    )
    secure = request.url.scheme == "https"
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=3600, path="/ui/login", httponly=True, samesite="strict", secure=secure
    )
    return response


def _oidc_provider(request: Request) -> str | None:
    """The single sign-on provider's name for the sign-in button (None: not configured)."""
    settings = request.app.state.runtime.settings
    return str(settings.oidc_provider_name) if settings.oidc_issuer else None


@router.get("/login")
def login_form(request: Request, next: str | None = None, expired: bool = False) -> Response:
    message = "Your session ended after a period of inactivity. Sign in again." if expired else ""
    return _login_page(request, _safe_next(next), message=message)


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=256)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/ui/",
) -> Response:
    target = _safe_next(next)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf, expected):
        return _login_page(request, target, username, "The sign-in form expired. Please try again.", 403)
    if not username or not password:
        return _login_page(request, target, username, "Enter your username and password.", 422)
    authenticator: Authenticator = request.app.state.authenticator
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    # Read before the check: a password changed meanwhile ends this session at its first request.
    account = authenticator.app.local_account(username) if len(username) <= 64 else None
    try:
        principal = authenticator.authenticate("Basic " + credentials)
    except AuthenticationError:
        return _login_page(request, target, username, "Wrong username or password.", 401)
    except UnavailableError as error:
        return _login_page(request, target, username, f"Sign-in is unavailable: {error.message}", 503)
    generation = password_generation(account.password_hash) if account is not None and principal.via == "local" else ""
    session = Session.start(principal, now(), generation)
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https"
    console_of(request).codec.set_cookie(response, session, secure=secure)
    response.delete_cookie(LOGIN_COOKIE, path="/ui/login", httponly=True, samesite="strict", secure=secure)
    return response


@router.post("/logout")
def logout(request: Request, session: CheckedDep) -> Response:
    console = console_of(request)
    moment = now()
    # Every copy of this cookie stops working now, not only the one this browser drops.
    console.signed_out.record(session, until=moment + console.codec.idle_seconds, now=moment)
    response = RedirectResponse("/ui/login", status_code=303)
    console.codec.clear_cookie(response, secure=request.url.scheme == "https")
    return response
