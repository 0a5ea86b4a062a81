"""The request handler of a planned route (api/solver.py) that answers with JSON: FastAPI's, less
what such a route does not use.

FastAPI's request handler (`fastapi.routing.get_request_handler`) serves every kind of route: it
asks the telemetry hooks about every request (switched off here: api/app.py), parses the
Content-Type with the standard library's e-mail parser on every request, reads the endpoint's
source location for its error messages, and checks at each request which of the streaming kinds
(server-sent events, JSON lines, raw generators) the route is. For a route whose dependencies are
planned, whose endpoint is a coroutine (a plain one runs in the thread pool: api/routing.py) and
whose answer is JSON in the default response class, this handler does the same steps, in the same
order, with the same functions:

- the body: read once; a JSON Content-Type (the same rule, by `api.limits.is_json`, once per
  distinct header) is parsed by `json.loads` as FastAPI does; a body it cannot read (malformed
  JSON, bytes that are not text, a body over a limit) is left to FastAPI's own handler, on the
  same request (the body is kept on it), which raises exactly what it always raised;
- the dependencies, by the route's plan; errors raise FastAPI's `RequestValidationError` with the
  same errors, body and endpoint context;
- the endpoint; an answer that is a `Response` is sent as it is;
- the answer validated against the response model and serialised by it (`serialize_response`,
  the same call FastAPI makes), in a `Response` with the plan's headers and status.

Anything else, and every request while dependency overrides are set (tests), keeps FastAPI's
handler (api/routing.py decides). tests/unit/test_direct_handler.py compares both handlers'
answers route by route.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import params
from fastapi import routing as fastapi_routing
from fastapi._body_limit import get_body_limit_error
from fastapi._compat import Undefined
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.utils import is_body_allowed_for_status_code
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

# FastAPI's helpers this handler calls; a FastAPI without them keeps its own handler everywhere.
_NEEDED = ("serialize_response", "_extract_endpoint_context")
AVAILABLE = all(hasattr(fastapi_routing, name) for name in _NEEDED)


def direct_handler(route: Any, dependant: Dependant, fallback: Handler) -> Handler | None:
    """The lean handler of `route` (an APIRoute, or the effective copy of an included one) whose
    runtime `dependant` carries a plan; None when the route is not of the kind it serves.
    `fallback` is FastAPI's handler of the same route and dependant."""
    plan = getattr(dependant, "plan", None)
    call = dependant.call
    body_field = route.body_field
    if (
        not AVAILABLE
        or plan is None
        or call is None
        or not _is_coroutine_function(call)
        or getattr(route, "is_sse_stream", False)
        or getattr(route, "is_json_stream", False)
        or getattr(route, "stream_item_field", None) is not None
        or not isinstance(route.response_class, DefaultPlaceholder)
        or route.response_class.value is not JSONResponse
        or (body_field is not None and _is_form(body_field))
    ):
        return None
    status_code: int | None = route.status_code
    response_field = route.response_field
    embed: bool = route._embed_body_fields
    strict = route.strict_content_type
    strict_content_type: bool = strict.value if isinstance(strict, DefaultPlaceholder) else bool(strict)
    options = {
        "include": route.response_model_include,
        "exclude": route.response_model_exclude,
        "by_alias": route.response_model_by_alias,
        "exclude_unset": route.response_model_exclude_unset,
        "exclude_defaults": route.response_model_exclude_defaults,
        "exclude_none": route.response_model_exclude_none,
    }
    path = dependant.path
    from api.limits import is_json  # api.limits -> api.errors -> ... -> api.routing: imported once routes exist

    def endpoint_context(request: Request) -> Any:
        context: Any = fastapi_routing._extract_endpoint_context(call)
        if path:
            context = {**context, "path": f"{request.method} {request.scope.get('root_path', '').rstrip('/')}{path}"}
        return context

    async def handler(request: Request) -> Response:
        body: Any = Undefined
        if body_field is not None:
            try:
                body_bytes = await request.body()
            except HTTPException:
                raise
            except Exception as error:
                # As FastAPI: a body over a limit is that limit's error, anything else a 400.
                if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (limit := get_body_limit_error(error)):
                    raise limit from error
                raise HTTPException(status_code=400, detail="There was an error parsing the body") from error
            if body_bytes:
                content_type = request.headers.get("content-type")
                try:
                    if not content_type:
                        body = body_bytes if strict_content_type else json.loads(body_bytes)
                    elif is_json(content_type):
                        body = json.loads(body_bytes)
                    else:
                        body = body_bytes
                except Exception:  # FastAPI's handler (the body kept) raises its error
                    return await fallback(request)
        solved = await plan(request, body, embed)
        if solved.errors:
            raise RequestValidationError(
                solved.errors, body=None if body is Undefined else body, endpoint_ctx=endpoint_context(request)
            )
        raw = await call(**solved.values)
        if isinstance(raw, Response):
            if raw.background is None:
                raw.background = solved.background_tasks
            return raw
        # As FastAPI: the status the endpoint set on its response, else the route's.
        status = solved.response.status_code or status_code
        arguments: dict[str, Any] = {"background": solved.background_tasks}
        if status is not None:
            arguments["status_code"] = status
        if response_field is not None:
            content = await fastapi_routing.serialize_response(
                field=response_field,
                response_content=raw,
                is_coroutine=True,
                endpoint_ctx=endpoint_context(request),
                dump_json=True,
                **options,
            )
            response = Response(content=content, media_type="application/json", **arguments)
        else:
            content = await fastapi_routing.serialize_response(response_content=raw, is_coroutine=True, **options)
            response = JSONResponse(content, **arguments)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        response.headers.raw.extend(solved.response.headers.raw)
        return response

    return handler


def _is_coroutine_function(call: Callable[..., Any]) -> bool:
    # A function, or an object whose `__call__` is a coroutine function (as FastAPI decides).
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)


def _is_form(field: Any) -> bool:
    return isinstance(field.field_info, params.Form)
