"""The `Allow` header of a 405: every method the path serves.

FastAPI registers one route per path and method, and Starlette answers a 405 with the methods of
the first route whose path matched, so `Allow` on /services/{id} would say GET and omit PATCH and
DELETE.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Match

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    )
