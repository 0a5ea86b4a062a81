"""The process manager holds `quiet` (the runtime's cycle-collector pause) for a provisioning
pass: the addresses' write and every clone are made inside it, and it is let go when the pass ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from adapters import collector
from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.ports import CloneSpec, VmInfo
from tests.support import THREE_TIER, stages


def test_the_clones_are_made_while_quiet_is_held(
    runtime: Runtime, vcenter: SimulatedVCenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runtime.process.quiet is collector.paused  # as the runtime wires it
    held: list[str] = []
    during: list[bool] = []

    @contextmanager
    def quiet() -> Iterator[None]:
        held.append("in")
        try:
            yield
        finally:
            held.append("out")

    clone = vcenter.clone

    def recorded(spec: CloneSpec) -> VmInfo:
        during.append(held[-1:] == ["in"])
        return clone(spec)

    monkeypatch.setattr(runtime.process, "quiet", quiet)
    monkeypatch.setattr(vcenter, "clone", recorded)
    app = runtime.app
    service = app.register_service("payroll", "", stages("int"), actor="a").value
    configuration = app.create_configuration(service.id, "p3", "", [{"name": "front"}], THREE_TIER, actor="a").value
    writes: list[tuple[tuple[str, ...], bool]] = []
    app.on_commit(lambda saved: writes.append((saved.topics, held[-1:] == ["in"])))
    deployment_id = app.deploy(configuration.id, "int", actor="alice").value.id
    runtime.catch_up()
    assert app.deployment(deployment_id).state == "deployed"
    assert during == [True] * len(THREE_TIER)
    steps = [inside for topics, inside in writes if any("Addresses" in t or "MachineProvisioned" in t for t in topics)]
    assert steps
    assert all(steps)  # the addresses' write and every machine's, inside
    assert held == ["in", "out"]
