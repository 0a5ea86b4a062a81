"""What every console page needs: the signed-in user, the CSRF check, rendering and errors."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, RedirectResponse, Response

from adapters.runtime import Runtime
from api.auth import Authenticator
from api.errors import REFUSALS, record_refusal, status_of
from api.routing import OneHopRoute
from api.ui.boardcache import BoardCache
from api.ui.consoles import ScreenshotCache
from api.ui.revocation import SignedOut
from api.ui.session import COOKIE, Session, SessionCodec, now, password_generation, stored_secret
from domain.errors import PermissionDeniedError, StagekeeperError, UnavailableError, ValidationError
from domain.gate import GateContext
from domain.governance import AwaitingApprovalError

TEMPLATES = Path(__file__).parent / "templates"


class SignInRequired(Exception):  # noqa: N818 - a redirect, not an error condition
    """No valid session: the browser goes to the sign-in page."""


class Console:
    """The console's parts, built once per app (on app.state.console)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        self.templates.env.globals["static"] = static_url
        self.screenshots = ScreenshotCache()
        self.boards = BoardCache()
        self.signed_out = SignedOut(runtime.store)
        self._codec: SessionCodec | None = None
        self._lock = threading.Lock()

    @property
    def codec(self) -> SessionCodec:
        # Built at first use, not at import or app build: it may create the secret's table.
        with self._lock:
            if self._codec is None:
                settings = self.runtime.settings
                secret = (
                    settings.session_secret.encode() if settings.session_secret else stored_secret(self.runtime.store)
                )
                self._codec = SessionCodec(secret, settings.session_idle_minutes * 60.0)
            return self._codec


def static_url(name: str) -> str:
    return f"/ui/static/{name}"


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def current_session(request: Request) -> Session:
    console = console_of(request)
    session = console.codec.decode(request.cookies.get(COOKIE), now())
    if session is None or console.signed_out.contains(session):
        raise SignInRequired
    session = regroup(request, session)
    request.state.session = session
    # Read before the page reads anything: its live updates start from here, so no change made
    # while it was being drawn is missed.
    request.state.head = runtime_of(request).app.head()
    # api.errors.record_refusal audits refusals with this caller, as for the API.
    request.state.principal = session.principal
    return session


def regroup(request: Request, session: Session) -> Session:
    """Directory users: groups (and so roles) are read again as often as a password check is
    cached, so a removal from a group takes effect in the console as it does in the API."""
    authenticator: Authenticator = request.app.state.authenticator
    directory = authenticator.directory
    moment = now()
    if session.via == "local":
        return _regroup_local(request, authenticator, session, moment)
    if session.via == "oidc" and not authenticator.sso_enabled:
        raise SignInRequired  # single sign-on was switched off: its sessions end, as its tokens do
    if session.via != "password" or directory is None or moment - session.groups_checked < authenticator.cache_seconds:
        return session
    try:
        groups = directory.groups(session.user)
    except UnavailableError:
        return session  # the directory is down: keep the groups known, as API tokens do
    if groups is None:
        raise SignInRequired  # no longer in the directory
    # The Authenticator's own rule for the admin group, not a copy of it.
    is_admin = authenticator._is_admin(groups)
    fresh = replace(session, groups=groups, is_admin=is_admin, groups_checked=moment)
    request.state.session_changed = True
    return fresh


def _regroup_local(request: Request, authenticator: Authenticator, session: Session, moment: float) -> Session:
    """Local users: the account is read on every request (one aggregate read). A disabled, removed
    or locked account, or one whose password changed since the sign-in, ends the session at once;
    changed groups apply at once."""
    account = authenticator._local_account(session.user)
    if account is None or account.locked_at(authenticator.app.clock.now()):
        raise SignInRequired
    if not hmac.compare_digest(password_generation(account.password_hash), session.password):
        raise SignInRequired  # a new password (a reset after a leak) ends the sessions opened before
    principal = authenticator._local_principal(account)
    if (principal.groups, principal.is_admin) == (session.groups, session.is_admin):
        return session
    fresh = replace(session, groups=principal.groups, is_admin=principal.is_admin, groups_checked=moment)
    request.state.session_changed = True
    return fresh


SessionDep = Annotated[Session, Depends(current_session)]
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


class CsrfError(PermissionDeniedError):
    code = "csrf"


async def checked_session(request: Request, session: SessionDep) -> Session:
    """For every POST: the form (or the X-CSRF-Token header) must carry the session's token."""
    form = await request.form()
    token = form.get("csrf") or request.headers.get("x-csrf-token") or ""
    if not isinstance(token, str) or not hmac.compare_digest(token, session.csrf):
        raise CsrfError("this form is missing its security token or it has expired: reload the page and retry")
    # The admission gate's view of this form (api/gate.py does the same for the API).
    override = form.get("override_freeze") in ("on", "true")
    runtime_of(request).app.gate_context.set(GateContext(caller=session.principal.caller, override_freeze=override))
    return session


CheckedDep = Annotated[Session, Depends(checked_session)]


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    session: Session | None = getattr(request.state, "session", None)
    base = {"session": session, "csrf": session.csrf if session else "", "head": getattr(request.state, "head", 0)}
    base["line"] = stop_line_banner(request) if session is not None else None
    response = console_of(request).templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status
    )
    _refresh(request, response)
    return response


def stop_line_banner(request: Request) -> Any:
    """The stop-the-line switch for the banner on every page (none while the store is unreachable:
    the page then says what is wrong)."""
    try:
        return runtime_of(request).app.line()
    except UnavailableError:
        return None


def redirect(request: Request, url: str) -> Response:
    """After a successful POST: go to `url` (303, so a reload does not post again)."""
    if request.headers.get("hx-request"):
        response: Response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    _refresh(request, response)
    return response


# Everything the console loads is its own: no inline script or style, no framing by other sites.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _refresh(request: Request, response: Response) -> None:
    response.headers.update(SECURITY_HEADERS)
    session: Session | None = getattr(request.state, "session", None)
    if session is None:
        return
    codec = console_of(request).codec
    touched = codec.touch(session, now(), changed=getattr(request.state, "session_changed", False))
    if touched is not None:
        codec.set_cookie(response, touched, secure=request.url.scheme == "https")


def error_page(request: Request, error: StagekeeperError) -> Response:
    status = status_of(error)
    if isinstance(error, REFUSALS) and request.method != "GET":
        record_refusal(request, error)
    template = "fragments/error.html" if request.headers.get("hx-request") else "error.html"
    return render(request, template, {"error": error, "status": status, "title": "Not done"}, status)


class ConsoleRoute(OneHopRoute):
    """Console routes answer in HTML: errors become a page naming what was refused and why."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                here = request.url.path + ("?" + request.url.query if request.url.query else "")
                target = "/ui/login?next=" + quote(here)
                if COOKIE in request.cookies:
                    target += "&expired=true"  # the sign-in page says why
                if request.headers.get("hx-request"):
                    return Response(status_code=204, headers={"HX-Redirect": target})
                return RedirectResponse(target, status_code=303)
            except AwaitingApprovalError:
                return redirect(request, "/ui/approvals")
            except StagekeeperError as error:
                return error_page(request, error)
            except RequestValidationError as error:
                first = error.errors()[0] if error.errors() else {}
                field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
                message = f"{field}: {first.get('msg', 'invalid value')}"
                return error_page(request, ValidationError(message, field=field))

        return console_handler


def refused(request: Request, error: StagekeeperError) -> None:
    """A refusal shown inline on a form is audited exactly as the API would audit it."""
    if isinstance(error, REFUSALS):
        record_refusal(request, error)


def wait_for(runtime: Runtime, model: str, at: int | None) -> int:
    """Read model `model` once it reflects position `at` (the redirect after a write carries it)."""
    return runtime.read_models.wait(model, at, runtime.settings.read_wait_seconds)
