"""Pages the next capabilities fill: each says what will be there, so the navigation has no dead end."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.ui.context import ConsoleRoute, SessionDep, render

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)

PAGES = {
    "archives": (
        "Archives",
        "Complete, restorable copies of configurations (definition and machine images), kept in tiered "
        'storage: "Archive Now" on a configuration, restore in one action, older archives on cheaper tiers.',
    ),
    "resources": (
        "Resources",
        "Resource consumption per service and per stage (CPU, memory, storage), graphical disk consumption "
        "and the linked-clone dependency tree.",
    ),
}


def _later(request: Request, key: str) -> Response:
    title, text = PAGES[key]
    return render(request, "later.html", {"title": title, "nav": key, "text": text})


@router.get("/archives")
def archives(request: Request, session: SessionDep) -> Response:
    return _later(request, "archives")


@router.get("/resources")
def resources(request: Request, session: SessionDep) -> Response:
    return _later(request, "resources")
