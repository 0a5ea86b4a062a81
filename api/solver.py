"""A route's dependencies solved by a plan made once, when the route's handler is built.

FastAPI's `solve_dependencies` walks a route's dependency tree on every request and decides
again, for each node, what it is: whether an override replaces it, whether it is a generator,
a coroutine or a plain function, whether it uses OAuth scopes (its cache key), which of the
special parameters it takes. On a command that is about a third of the event loop's time per
request (scripts/bench/asgi.py). None of it changes between requests, so `compile_plan` decides
it once, from the route's own dependency tree (the same declarations, not a second copy of the
rules), and the plan runs what is left, in FastAPI's order and with its functions:

- each sub-dependency is solved depth-first, in declaration order; one whose own parameters
  fail validation adds its errors and is not called; a result is cached per request under
  FastAPI's own cache key (`use_cache`), so a dependency named twice runs once;
- then the node's path, query, header and cookie parameters and its body are validated by
  FastAPI's `request_params_to_args` / `request_body_to_args` (the same values, the same errors);
  path parameters (a plain dictionary, one request key each) by what `request_params_to_args`
  does with them, its per-field decisions (aliases, model, sequence) made with the plan, and
  FastAPI's own validation of each value;
- the special parameters (the request, the response whose headers and status the answer takes).

Only trees made of plain parameters and coroutine or plain-function dependencies are planned;
anything else (a generator dependency, OAuth scopes, background tasks, a concurrency limit, a
websocket) keeps FastAPI's own solver, and so does every request while dependency overrides are
set (tests), since overrides name the declared dependencies. `install` puts the dispatcher in
FastAPI's request handler: it solves a `PlannedDependant` (`planned`) by its plan, anything else
by FastAPI.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Response
from fastapi import routing as fastapi_routing
from fastapi._compat import Undefined, field_annotation_is_sequence
from fastapi.dependencies import models as fastapi_models
from fastapi.dependencies import utils as fastapi_utils
from fastapi.dependencies.models import Dependant
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

Plan = Callable[[Request, Any, bool], Awaitable[Any]]

# FastAPI's helpers `request_params_to_args` is made of, for the path parameters read in line.
_PATH_INTERNALS = all(
    hasattr(fastapi_utils, name)
    for name in ("_get_param_aliases", "_get_param_model", "_validate_value_with_model_field")
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Sub:
    """One sub-dependency: how to solve its own parameters, and how to call it."""

    node: _Node
    call: Callable[..., Any]
    name: str | None
    key: Any
    use_cache: bool
    coroutine: bool
    # A dependency with no parameters to solve but the request (and the response): the names it
    # takes them by, as `_solve` would give them; None for any other (its node is solved).
    leaf: tuple[tuple[str, bool], ...] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _PathParam:
    """A path parameter, as `request_params_to_args` reads it from the path's parameters (a
    plain dictionary): its one request key, where an error points, whether it is a sequence."""

    field: Any
    alias: str
    loc: tuple[str, str]
    sequence: bool


@dataclasses.dataclass(frozen=True, slots=True)
class _Node:
    subs: tuple[_Sub, ...]
    dependant: Dependant
    # The path parameters read in line, or None: FastAPI's `request_params_to_args` reads them.
    path_params: tuple[_PathParam, ...] | None = None


class NotPlannableError(Exception):
    """The tree uses something only FastAPI's own solver handles."""


def _node(dependant: Dependant) -> _Node:
    if (
        dependant.websocket_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
        or dependant.parent_oauth_scopes
        or dependant.concurrency is not None
    ):
        raise NotPlannableError(dependant.call)
    subs = []
    for sub in dependant.dependencies:
        call = sub.call
        if call is None or fastapi_models._is_gen_callable(call) or fastapi_models._is_async_gen_callable(call):
            raise NotPlannableError(call)
        node = _node(sub)
        subs.append(
            _Sub(
                node=node,
                call=call,
                name=sub.name,
                key=fastapi_models._get_cache_key(dependant=sub),
                use_cache=sub.use_cache,
                coroutine=fastapi_models._is_coroutine_callable(call),
                leaf=_leaf(node),
            )
        )
    return _Node(tuple(subs), dependant, _path_params(dependant.path_params))


def _leaf(node: _Node) -> tuple[tuple[str, bool], ...] | None:
    """For a node with no dependencies and no parameters but the request and the response: the
    (name, is the response) pairs `_solve` fills in, in its order; else None."""
    dependant = node.dependant
    if (
        node.subs
        or dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
    ):
        return None
    names = (
        (dependant.http_connection_param_name, False),
        (dependant.request_param_name, False),
        (dependant.response_param_name, True),
    )
    return tuple((name, is_response) for name, is_response in names if name)


def _path_params(fields: list[Any]) -> tuple[_PathParam, ...] | None:
    """What `request_params_to_args` decides about each path parameter on every request, decided
    once: a parameter that is a model, or has more than one request key, leaves it to FastAPI."""
    if not fields or not _PATH_INTERNALS:
        return None
    found = []
    for field in fields:
        aliases = fastapi_utils._get_param_aliases(field)
        if fastapi_utils._get_param_model(field) is not None or len(aliases) != 1:
            return None
        alias = aliases[0][1]
        found.append(
            _PathParam(
                field=field,
                alias=alias,
                loc=(field.field_info.in_.value, alias),
                sequence=bool(field_annotation_is_sequence(field.field_info.annotation)),
            )
        )
    return tuple(found)


def _read_path_params(params: tuple[_PathParam, ...], received: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """`request_params_to_args(fields, request.path_params)` for parameters `_path_params` read."""
    values: dict[str, Any] = {}
    errors: list[Any] = []
    for param in params:
        value = received.get(param.alias)
        if value is None or (param.sequence and len(value) == 0):
            value = Undefined
        found, wrong = fastapi_utils._validate_value_with_model_field(
            field=param.field, value=value, values=values, loc=param.loc
        )
        if wrong:
            errors.extend(wrong)
        else:
            values[param.field.name] = found
    return values, errors


async def _solve(
    node: _Node, request: Request, body: Any, embed: bool, response: Response, cache: dict[Any, Any]
) -> tuple[dict[str, Any], list[Any]]:
    """`fastapi.dependencies.utils.solve_dependencies` for a planned node (same order, same calls)."""
    values: dict[str, Any] = {}
    errors: list[Any] = []
    for sub in node.subs:
        if sub.leaf is not None:
            # What `_solve` gives such a node, without solving it (no errors can come of it).
            sub_values: dict[str, Any] = {}
            for name, is_response in sub.leaf:
                sub_values[name] = response if is_response else request
        else:
            sub_values, sub_errors = await _solve(sub.node, request, body, embed, response, cache)
            if sub_errors:
                errors.extend(sub_errors)
                continue
        if sub.use_cache and sub.key in cache:
            solved = cache[sub.key]
        elif sub.coroutine:
            solved = await sub.call(**sub_values)
        else:
            solved = await run_in_threadpool(sub.call, **sub_values)
        if sub.name is not None:
            values[sub.name] = solved
        if sub.key not in cache:
            cache[sub.key] = solved
    dependant = node.dependant
    if node.path_params is not None:
        found, wrong = _read_path_params(node.path_params, request.path_params)
        values.update(found)
        errors += wrong
    elif dependant.path_params:
        found, wrong = fastapi_utils.request_params_to_args(dependant.path_params, request.path_params)
        values.update(found)
        errors += wrong
    for fields, source in (
        (dependant.query_params, "query_params"),
        (dependant.header_params, "headers"),
        (dependant.cookie_params, "cookies"),
    ):
        if fields:
            found, wrong = fastapi_utils.request_params_to_args(fields, getattr(request, source))
            values.update(found)
            errors += wrong
    if dependant.body_params:
        found, wrong = await fastapi_utils.request_body_to_args(
            body_fields=dependant.body_params, received_body=body, embed_body_fields=embed
        )
        values.update(found)
        errors.extend(wrong)
    if dependant.http_connection_param_name:
        values[dependant.http_connection_param_name] = request
    if dependant.request_param_name:
        values[dependant.request_param_name] = request
    if dependant.response_param_name:
        values[dependant.response_param_name] = response
    return values, errors


def compile_plan(dependant: Dependant) -> Plan | None:
    """The plan of a route's (runtime) dependant, or None when FastAPI's solver must do it."""
    try:
        root = _node(dependant)
    except NotPlannableError:
        return None

    async def plan(request: Request, body: Any, embed: bool) -> Any:
        # The response whose headers and status the answer takes, made as FastAPI makes it.
        response = Response()
        del response.headers["content-length"]
        response.status_code = None  # type: ignore[assignment]
        cache: dict[Any, Any] = {}
        values, errors = await _solve(root, request, body, embed, response, cache)
        return fastapi_utils.SolvedDependency(
            values=values, errors=errors, background_tasks=None, response=response, dependency_cache=cache
        )

    return plan


@dataclasses.dataclass(slots=True)
class PlannedDependant(Dependant):
    """A route's dependant carrying the plan that solves it (the dependant is otherwise the same)."""

    plan: Plan | None = None


_fastapi_solve: Callable[..., Awaitable[Any]] | None = None


def planned(dependant: Dependant) -> Dependant:
    """`dependant` with its plan, when it can be planned (and `install` took); else itself."""
    if _fastapi_solve is None:
        return dependant
    plan = compile_plan(dependant)
    if plan is None:
        return dependant
    fields = {f.name: getattr(dependant, f.name) for f in dataclasses.fields(Dependant)}
    return PlannedDependant(**fields, plan=plan)


async def _dispatch(
    *,
    request: Request,
    dependant: Dependant,
    body: Any = Undefined,
    dependency_overrides_provider: Any | None = None,
    embed_body_fields: bool,
    **kwargs: Any,
) -> Any:
    plan = dependant.plan if type(dependant) is PlannedDependant else None
    if (
        plan is not None
        and not kwargs.get("dependency_cache")
        and kwargs.get("response") is None
        and kwargs.get("background_tasks") is None
        and not getattr(dependency_overrides_provider, "dependency_overrides", None)
    ):
        return await plan(request, body, embed_body_fields)
    assert _fastapi_solve is not None
    return await _fastapi_solve(
        request=request,
        dependant=dependant,
        body=body,
        dependency_overrides_provider=dependency_overrides_provider,
        embed_body_fields=embed_body_fields,
        **kwargs,
    )


def install() -> None:
    """Route FastAPI's request handlers through `_dispatch` (once). A FastAPI whose handler no
    longer calls a module-level `solve_dependencies`, or whose internals the plan relies on are
    gone, keeps its own solver: nothing is planned then."""
    global _fastapi_solve
    if _fastapi_solve is not None:
        return
    current = getattr(fastapi_routing, "solve_dependencies", None)
    needed = (
        getattr(fastapi_models, name, None)
        for name in ("_is_gen_callable", "_is_async_gen_callable", "_is_coroutine_callable", "_get_cache_key")
    )
    if current is None or not all(needed) or not hasattr(fastapi_utils, "SolvedDependency"):
        return
    _fastapi_solve = current
    setattr(fastapi_routing, "solve_dependencies", _dispatch)  # noqa: B010 (a module global)
