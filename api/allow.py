"""The `Allow` header of a 405: the methods the API documents for the path.

FastAPI registers one route per path and method, and Starlette answers a 405 with the methods of
the first route whose path matched, so `Allow` on /services/{id} would say GET and omit PATCH and
DELETE. The most specific documented template wins: /stages/order also matches /stages/{stage},
but PATCH there updates a stage named "order", it does not act on the order.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import compile_path


def allowed_methods(request: Request) -> str | None:
    """None for a path the API does not document (Starlette's own header stands)."""
    path = request.scope["path"]
    candidates = [
        (template.count("{"), template, operations)
        for template, operations in request.app.openapi()["paths"].items()
        if compile_path(template)[0].match(path)
    ]
    if not candidates:
        return None
    _, _, operations = min(candidates)
    return ", ".join(method.upper() for method in operations)
