"""The board as it is now, computed once per change and shared by everyone who may read the same
services.

Every open board redraws after every change, and the board of hundreds of services is the most
expensive read there is. The API's board document is kept under the positions of the read models
it comes from (and the set of services the caller may read): until one of them moves, the next
viewer gets it without a query. Past instants (`as_of`) are not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from adapters.runtime import Runtime
from api.access import readable_service_ids
from api.auth import Principal
from api.routes.board import board_document

Key = tuple[int, int, frozenset[str] | None]


def plain(document: Any) -> dict[str, Any]:
    """The API route's answer as plain data (its response model, or the dict it returned)."""
    dumped: dict[str, Any] = document.model_dump(mode="json") if hasattr(document, "model_dump") else document
    return dumped


class BoardCache:
    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._documents: OrderedDict[Key, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def now(self, runtime: Runtime, who: Principal, min_position: int | None) -> dict[str, Any]:
        """The API's board now (after `min_position`); callers must not change what they get."""
        runtime.read_models.wait("deployments", min_position, runtime.settings.read_wait_seconds)
        # Read before the board: the document reflects at least these positions, never less.
        readable = readable_service_ids(runtime, who)
        key: Key = (
            runtime.read_models.position("deployments"),
            runtime.read_models.position("services"),
            frozenset(readable) if readable is not None else None,
        )
        with self._lock:
            kept = self._documents.get(key)
            if kept is not None:
                self._documents.move_to_end(key)
                return kept
        document = plain(board_document(runtime=runtime, who=who, min_position=None, service=None, as_of=None))
        with self._lock:
            self._documents[key] = document
            while len(self._documents) > self.size:
                self._documents.popitem(last=False)
        return document
