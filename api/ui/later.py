"""Pages the next capabilities fill: each says what will be there, so the navigation has no dead end."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.ui.context import ConsoleRoute, SessionDep, render

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)

PAGES = {
    "leases": (
        "Leases",
        "Every deployment's expiry, with warnings before it passes, one-click extension, idle reaping and a "
        "dry-run report of what would be undeployed. Production never expires unless its policy says so.",
    ),
}


def _later(request: Request, key: str) -> Response:
    title, text = PAGES[key]
    return render(request, "later.html", {"title": title, "nav": key, "text": text})


@router.get("/leases")
def leases(request: Request, session: SessionDep) -> Response:
    return _later(request, "leases")
