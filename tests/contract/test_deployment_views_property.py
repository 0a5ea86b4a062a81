"""Property: the deployments read model and the board (now, and as of every earlier step) show
exactly the aggregate's own view, whatever sequence of commands and vCenter faults led there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from api.app import create_app
from api.responses.deployments import Board
from domain.errors import StagekeeperError, VCenterFaultError
from projections.base import iso
from projections.deployments import board_entry
from tests.e2e.conftest import AUTH
from tests.support import ROOT_POOL, machine, postgres_schema, runtime_for, settings_for


class ScheduledFaults(SimulatedVCenter):
    """The simulated driver, failing chosen calls: plan["relocate"] = [False, True] lets the
    first relocation through and fails the second (so a move fails after one VM moved)."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: dict[str, list[bool]] = {}

    def _maybe_fail(self, method: str) -> None:
        planned = self.plan.get(method)
        if planned and planned.pop(0):
            raise VCenterFaultError(f"vCenter fault during {method}: injected")
        super()._maybe_fail(method)


FAULTS: dict[str, dict[str, list[bool]]] = {
    "none": {},
    "clone fails": {"clone": [True]},  # provisioning fails; a move across clusters rolls back
    "second clone fails": {"clone": [False, True]},  # ... or fails after one machine moved
    "move rolled back": {"relocate": [False, True]},
    "move stuck": {"relocate": [False, True, True]},  # moving back fails too
}
ACTIONS = ("deploy", "promote", "demote", "undeploy", "retry", "rename")
STEP = st.tuples(st.sampled_from(ACTIONS), st.integers(0, 5), st.sampled_from(sorted(FAULTS)))
STAGES = [
    {"name": "int", "resource_pool": f"{ROOT_POOL}/int-pool"},
    {"name": "test", "resource_pool": f"{ROOT_POOL}/test-pool"},
    # A standalone host: moves into and out of it clone across clusters.
    {"name": "far", "resource_pool": "/DC0/host/DC0_H0/Resources/far-pool"},
]


@dataclass
class World:
    runtime: Runtime
    vcenter: ScheduledFaults
    service_id: UUID
    configuration_id: UUID
    deployments: list[UUID] = field(default_factory=list)
    # (moment, the board entries of every live deployment then)
    moments: list[tuple[datetime, dict[str, dict[str, Any]]]] = field(default_factory=list)
    renames: int = 0


@contextmanager
def world(url: str) -> Iterator[World]:
    vcenter = ScheduledFaults()
    runtime = runtime_for(url, vcenter=vcenter)
    try:
        runtime.ensure_admin()
        app = runtime.app
        app.import_templates(None, True, actor="a")
        service_id = app.register_service("payroll", "", STAGES, actor="a").value.id
        machines = [machine("web1"), machine("app1", customization={"os": "linux"})]
        configuration_id = app.create_configuration(
            service_id, "p2", "", [{"name": "front"}], machines, actor="a"
        ).value.id
        runtime.catch_up()
        yield World(runtime, vcenter, service_id, configuration_id)
    finally:
        runtime.close()


def act(w: World, action: str, pick: int) -> None:
    app = w.runtime.app
    target = w.deployments[pick % len(w.deployments)] if w.deployments else None
    try:
        if action == "deploy" or target is None:
            stage = app.service(w.service_id).stages[pick % 3]["name"]
            w.deployments.append(app.deploy(w.configuration_id, stage, actor="a").value.id)
        elif action == "promote":
            app.promote(target, actor="a")
        elif action == "demote":
            app.demote(target, actor="a")
        elif action == "undeploy":
            app.undeploy(target, actor="a")
        elif action == "retry":
            app.retry_deployment(target, actor="a")
        else:
            stage = app.service(w.service_id).stages[pick % 3]["name"]
            w.renames += 1
            app.update_stage(w.service_id, stage, {"name": f"stage{w.renames}"}, actor="a")
    except StagekeeperError:
        pass  # refused (an invalid transition, nothing to promote to): refusals change no view


def live_entries(w: World) -> dict[str, dict[str, Any]]:
    views = [w.runtime.app.deployment(d).view() for d in w.deployments]
    return {v["id"]: board_entry(v) for v in views if v["state"] != "undeployed"}


def check(w: World) -> None:
    runtime = w.runtime
    rows = {r["id"]: r for r in runtime.read_models.deployments(limit=10_000)}
    assert sorted(rows) == sorted(str(d) for d in w.deployments)
    for deployment_id in w.deployments:
        row = dict(rows[str(deployment_id)])
        assert row.pop("position") <= runtime.app.head()
        assert row == runtime.app.deployment(deployment_id).view()
    [service] = runtime.read_models.board()
    shown = {e["id"]: e for stage in service["stages"] for e in stage["deployments"] if e["stage"] == stage["name"]}
    assert shown == live_entries(w)
    for moment, then in w.moments:
        assert {e["id"]: e for e in runtime.read_models.board_entries_at(iso(moment))} == then


def run(url: str, steps: list[tuple[str, int, str]]) -> None:
    with world(url) as w:
        for action, pick, fault in steps:
            w.vcenter.plan = {method: list(plan) for method, plan in FAULTS[fault].items()}
            act(w, action, pick)
            w.runtime.catch_up()
            w.vcenter.plan = {}
            check(w)
            time.sleep(0.001)  # the next step's events are strictly later than this moment
            w.moments.append((datetime.now(UTC), live_entries(w)))
            time.sleep(0.001)
        # The board over HTTP, as of every step: the same entries, each in the stage it was in then.
        app = create_app(settings_for(w.runtime.settings.database_url), runtime=w.runtime)
        with TestClient(app) as client:
            for moment, then in w.moments:
                board = client.get("/api/v1/board", params={"as_of": moment.isoformat()}, auth=AUTH).json()
                placed = {
                    e["id"]: e
                    for s in board["services"]
                    for stage in s["stages"]
                    for e in stage["deployments"]
                    if e["stage"] == stage["name"]
                }
                assert placed == then
            # Now, the board is written around its stored entries without the response model: what
            # it sends is what the model accepts and would send, and every live deployment is on it.
            body = client.get("/api/v1/board", params={"per_stage": 100, "max_entries": 5000}, auth=AUTH).json()
            assert Board.model_validate(body).model_dump(mode="json") == body
            shown = {e["id"]: e for s in body["services"] for stage in s["stages"] for e in stage["deployments"]}
            assert shown == live_entries(w)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=10))
def test_read_model_and_board_equal_the_aggregate_view_on_sqlite(steps: list[tuple[str, int, str]]) -> None:
    with TemporaryDirectory() as directory:
        run(f"sqlite:///{Path(directory) / 'sk.db'}", steps)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=4, max_size=10))
def test_read_model_and_board_equal_the_aggregate_view_on_postgres(steps: list[tuple[str, int, str]]) -> None:
    with postgres_schema() as url:
        run(url, steps)


def test_a_rolled_back_failed_move_leaves_no_target_in_the_read_model(sqlite_url: str) -> None:
    """The drift the property found first: MoveFailed (rolled back) cleared the target stage only."""
    with world(sqlite_url) as w:
        for action, pick, fault in [("deploy", 0, "none"), ("promote", 0, "move rolled back")]:
            w.vcenter.plan = {method: list(plan) for method, plan in FAULTS[fault].items()}
            act(w, action, pick)
            w.runtime.catch_up()
        [row] = w.runtime.read_models.deployments()
        assert (row["state"], row["stage"], row["target_stage"], row["target_pool"]) == ("deployed", "int", None, None)
        check(w)
