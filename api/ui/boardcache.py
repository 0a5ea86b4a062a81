"""The board as it is now, kept up to date from the deployments that changed, and shared by
everyone who views it.

Every open board redraws after every change, and the board of hundreds of services is the most
expensive read there is. So the board of every service is built once from the read models (the
same query the API's `/board` makes); each later request applies only the deployments written
since the position it was built at (the rows whose `position` is past it) and rebuilds just the
services they belong to. A change to what the board shows of services (a service registered,
renamed or retired, a stage added, renamed or remapped) lays the services out again from the
services read model around the deployments already known; only a deployments read model rebuilt
from the start makes it read every deployment again. Each caller then gets the services it may
read. Past instants (`as_of`) are not kept: they are read as the API reads them.

A board handed out is never changed afterwards: an update makes new lists and new service
entries, so a page still rendering the previous board is not disturbed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from adapters.runtime import Runtime
from api.access import readable_service_ids
from api.auth import Principal
from projections.queries import board_service

Row = dict[str, Any]


def plain(document: Any) -> dict[str, Any]:
    """The API route's answer as plain data (its response model, or the dict it returned)."""
    dumped: dict[str, Any] = document.model_dump(mode="json") if hasattr(document, "model_dump") else document
    return dumped


def order(entry: Row) -> tuple[str, str]:
    return str(entry["requested_at"]), str(entry["id"])


@dataclass(frozen=True)
class LiveBoard:
    """Every service's board at one deployments position and one services mark."""

    deployments_position: int
    services_mark: tuple[int, int]
    services: list[Row]  # in board order, each as board_service() makes it
    held: dict[str, dict[str, Row]]  # service id -> deployment id -> board entry, every live deployment

    @classmethod
    def build(cls, runtime: Runtime, deployments_position: int, services_mark: tuple[int, int]) -> LiveBoard:
        """From the read models: the API board's own queries."""
        entries = runtime.read_models.board_entries()
        held = {service_id: {str(e["id"]): e for e in listed} for service_id, listed in entries.items()}
        return cls(deployments_position, (-1, -1), [], {}).relaid(runtime, services_mark, held)

    def relaid(self, runtime: Runtime, services_mark: tuple[int, int], held: dict[str, dict[str, Row]]) -> LiveBoard:
        """The services as the services read model has them now, with the deployments already known
        (a stage renamed or added, a service registered or retired: no deployment is read again)."""
        services = [
            board_service(service, service["stages"], sorted(held.get(str(service["id"]), {}).values(), key=order))
            for service in runtime.read_models.services()
        ]
        return LiveBoard(self.deployments_position, services_mark, services, held)

    def moved(self, runtime: Runtime, deployments_position: int) -> LiveBoard:
        """This board with every deployment written since its position applied to it."""
        changes = runtime.read_models.board_changes(self.deployments_position)
        touched: dict[str, dict[str, Row]] = {}
        for entry in changes:
            service_id = str(entry["service_id"])
            entries = touched.get(service_id)
            if entries is None:
                entries = touched[service_id] = dict(self.held.get(service_id, {}))
            if entry["state"] == "undeployed":
                entries.pop(str(entry["id"]), None)
            else:
                entries[str(entry["id"])] = entry
        if not touched:
            return LiveBoard(deployments_position, self.services_mark, self.services, self.held)
        services = []
        for service in self.services:
            entries = touched.get(str(service["id"]))
            if entries is None:
                services.append(service)
                continue
            row = {"id": service["id"], "name": service["name"], "version": service["version"]}
            stages = [{k: v for k, v in stage.items() if k != "deployments"} for stage in service["stages"]]
            services.append(board_service(row, stages, sorted(entries.values(), key=order)))
        return LiveBoard(deployments_position, self.services_mark, services, {**self.held, **touched})


class BoardCache:
    def __init__(self) -> None:
        self._board: LiveBoard | None = None
        self._lock = threading.Lock()

    def now(self, runtime: Runtime, who: Principal, min_position: int | None) -> dict[str, Any]:
        """The API's board now (after `min_position`), for `who`; callers must not change what they get."""
        runtime.read_models.wait("deployments", min_position, runtime.settings.read_wait_seconds)
        readable = readable_service_ids(runtime, who)
        board = self.live(runtime)
        services = [s for s in board.services if readable is None or s["id"] in readable]
        return {"services": services, "position": board.deployments_position, "as_of": None}

    def live(self, runtime: Runtime) -> LiveBoard:
        # Read before the board: it reflects at least these positions, never less.
        deployments = runtime.read_models.position("deployments")
        services = runtime.read_models.services_mark()
        with self._lock:  # one request brings it up to date; the others wait for that, not redo it
            board = self._board
            if board is None or board.deployments_position > deployments:
                board = LiveBoard.build(runtime, deployments, services)  # first use, or a rebuilt read model
            if board.services_mark != services:
                board = board.relaid(runtime, services, board.held)
            if board.deployments_position < deployments:
                board = board.moved(runtime, deployments)
            self._board = board
            return board
