"""The top-level routers a request cannot match are passed over without walking their routes.

FastAPI (0.165) matches a request by asking each router the application included, in order,
whether one of its routes matches; an included router answers by walking its own routes, each
match setting and restoring its route context in the scope. A command walks the routers before
its own; a path no route has walks all ~190 routes twice (once more for the trailing-slash
redirect), 0.6 ms of the event loop's time per 404 on a quiet 2-core machine.

A route's path regex begins with its path's literal text up to the first parameter (starlette's
`compile_path` escapes it), so a request whose path does not start with one of those texts of an
included router's routes cannot match any of them: `index_routes` gives each included router a
`matches` that answers "no match" at once for such a path and asks FastAPI's own `matches`
otherwise. Nothing else changes: the routers stay in place and in order, the first full match
still wins, a partial one (another method: 405) and the redirect and the 404 are still decided by
FastAPI. The texts are computed from the router's own routes and again whenever FastAPI counts a
change of them (its routes version); a router with a route whose regex does not begin with its
literal text (a host route, anything this cannot read) is never passed over.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from fastapi import routing as fastapi_routing
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

Matches = Callable[[Scope], tuple[Match, Scope]]


def literal_prefix(route: Any) -> str | None:
    """The text every path a route matches starts with, or None when it cannot tell."""
    path_format = getattr(route, "path_format", None)
    regex = getattr(route, "path_regex", None)
    if not isinstance(path_format, str) or regex is None:
        return None
    prefix = path_format.split("{", 1)[0]
    pattern = getattr(regex, "pattern", None)
    # Trust the prefix only when the regex is literally "^" + that text, escaped, then the rest.
    if not isinstance(pattern, str) or not pattern.startswith("^" + re.escape(prefix)):
        return None
    return prefix


class RouterGuard:
    """An included router's `matches`, answering "no match" at once for paths none of its routes
    can match (see the module's doc), FastAPI's own `matches` otherwise."""

    __slots__ = ("_lock", "_state", "included", "matches")

    def __init__(self, included: Any) -> None:
        self.included = included
        # The class's method, bound: the instance attribute this guard becomes shadows it.
        self.matches: Matches = type(included).matches.__get__(included)
        self._lock = threading.Lock()
        # (routes version, whether the router includes routers itself, the prefixes or None)
        self._state: tuple[int, bool, tuple[str, ...] | None] | None = None

    def __call__(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            prefixes = self._prefixes()
            if prefixes is not None and not get_route_path(scope).startswith(prefixes):
                # FastAPI's own `matches` leaves the scope's "fastapi" dictionary behind.
                scope.setdefault(_FASTAPI_SCOPE_KEY, {})
                return Match.NONE, {}
        return self.matches(scope)

    def _version(self, nested: bool) -> int:
        router = self.included.original_router
        # Its own count moves with every route added to it (an included router too); a nested
        # router's routes are counted by the whole tree's version.
        return int(router._get_routes_version() if nested else router._routes_version)

    def _prefixes(self) -> tuple[str, ...] | None:
        state = self._state
        if state is not None and self._version(state[1]) == state[0]:
            return state[2]
        with self._lock:
            router = self.included.original_router
            nested = any(isinstance(r, fastapi_routing._IncludedRouter) for r in router.routes)
            version = self._version(nested)
            prefixes: list[str] = []
            for context in self.included.effective_route_contexts():
                route = context.starlette_route if context.starlette_route is not None else context
                prefix = literal_prefix(route)
                if prefix is None:
                    self._state = (version, nested, None)
                    return None
                prefixes.append(prefix)
            found = tuple(sorted(set(prefixes)))
            self._state = (version, nested, found)
            return found


_FASTAPI_SCOPE_KEY: str = getattr(fastapi_routing, "_FASTAPI_SCOPE_KEY", "fastapi")
# Where a router's match is kept in the request's scope for the router's `handle`.
MATCHED = "stagekeeper.matched"


class MatchOnce:
    """An included router's `_match`, run once per request: FastAPI matches the router's routes
    when it asks the router whether it matches, then again when the router handles the request;
    the second time gets the first's answer, kept in the request's scope (the same request: the
    same path, root path, method and type, and the same routes version, so the same answer)."""

    __slots__ = ("included", "match")

    def __init__(self, included: Any) -> None:
        self.included = included
        self.match: Callable[[Scope], Any] = type(included)._match.__get__(included)

    def __call__(self, scope: Scope) -> Any:
        key = (
            self.included.original_router._routes_version,
            scope["type"],
            scope.get("method"),
            scope["path"],
            scope.get("root_path", ""),
        )
        kept = scope.get(MATCHED)
        if kept is not None and kept[0] is self and kept[1] == key:
            return kept[2]
        found = self.match(scope)
        scope[MATCHED] = (self, key, found)
        return found


def index_routes(routes: list[BaseRoute]) -> int:
    """Guard every included router among `routes` (an application's router's); how many. A
    FastAPI without included routers of this kind (its routers' routes copied into the
    application's) has nothing to guard."""
    included_type = getattr(fastapi_routing, "_IncludedRouter", None)
    if included_type is None:
        return 0
    guarded = 0
    for route in routes:
        if type(route) is included_type and not isinstance(route.__dict__.get("matches"), RouterGuard):
            route.matches = RouterGuard(route)  # type: ignore[method-assign]
            if hasattr(included_type, "_match") and not _nested(route):
                route._match = MatchOnce(route)  # type: ignore[attr-defined]
            guarded += 1
    return guarded


def _nested(included: Any) -> bool:
    """Whether the router includes routers itself (their routes versions are not its own)."""
    return any(isinstance(r, fastapi_routing._IncludedRouter) for r in included.original_router.routes)
