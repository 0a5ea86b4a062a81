"""Upgrade in place and whole-deployment power from the deployment page, without a browser: offered
to the stage's operators only, the same commands as the API, progress shown per machine."""

from __future__ import annotations

import re
from collections.abc import Iterator
from uuid import UUID

import pytest

from tests.e2e.test_console_access import World, build_world
from tests.support import machine


@pytest.fixture
def world() -> Iterator[World]:
    built = build_world()  # a deployment of configuration 'p' v2 (with network 'extra') in int
    yield built
    built.runtime.close()


def page_of(world: World) -> str:
    return f"/ui/deployments/{world.ids['{deployment_id}']}"


def deployment_id(world: World) -> UUID:
    return UUID(world.ids["{deployment_id}"])


def test_upgrade_is_offered_to_operators_with_every_other_version_and_runs_in_place(world: World) -> None:
    app = world.runtime.app
    configuration_id = UUID(world.ids["{configuration_id}"])
    app.change_machine(configuration_id, "web1", machine("web1", memory_mib=4096), actor="setup")  # v3
    app.add_machine(configuration_id, machine("cache1"), actor="setup")  # v4
    world.sign_in("viewer")
    assert "upgrade-dialog" not in world.client.get(page_of(world)).text
    csrf = world.sign_in("operator")
    page = world.client.get(page_of(world)).text
    dialog = page.split('id="upgrade-dialog"')[1].split("</dialog>")[0]
    assert re.findall(r'<option value="(\d+)">', dialog) == ["4", "3", "1"]  # newest first, not the current v2
    before = {m["name"]: m["vm_id"] for m in app.deployment(deployment_id(world)).machines}
    done = world.client.post(
        page_of(world) + "/upgrade", data={"csrf": csrf, "version": "3", "expected": "999"}, follow_redirects=False
    )
    assert done.status_code == 412  # a stale page: the deployment moved on since it was drawn
    done = world.client.post(page_of(world) + "/upgrade", data={"csrf": csrf, "version": "3"}, follow_redirects=False)
    assert done.status_code == 303
    upgrading = world.client.get(page_of(world)).text
    assert "v2 → <strong>v3</strong>" in upgrading
    assert 'data-progress="web1">upgrading to v3' in upgrading
    world.runtime.catch_up()
    deployment = app.deployment(deployment_id(world))
    assert (deployment.state, deployment.configuration_version) == ("deployed", 3)
    assert {m["name"]: m["vm_id"] for m in deployment.machines} == before  # in place: the same VMs
    assert deployment.machine("web1")["spec"]["memory_mib"] == 4096
    bad = world.client.post(page_of(world) + "/upgrade", data={"csrf": csrf, "version": "many"})
    assert bad.status_code == 422
    assert "version must be an integer" in bad.text


def test_power_off_all_then_on_all_is_offered_by_state_and_recorded_per_machine(world: World) -> None:
    world.sign_in("viewer")
    assert "Power off all" not in world.client.get(page_of(world)).text
    csrf = world.sign_in("operator")
    page = world.client.get(page_of(world)).text
    assert re.search(r'data-dialog="power-on-dialog" disabled', page)  # everything is on already
    off = world.client.post(page_of(world) + "/power", data={"csrf": csrf, "action": "off", "reason": "night"},
                            follow_redirects=False)  # fmt: skip
    assert off.status_code == 303
    world.runtime.catch_up()
    machines = world.runtime.app.deployment(deployment_id(world)).machines
    assert [m["power"] for m in machines] == ["poweredOff", "poweredOff"]
    page = world.client.get(page_of(world)).text
    assert re.search(r'data-dialog="power-off-dialog" disabled', page)
    again = world.client.post(page_of(world) + "/power", data={"csrf": csrf, "action": "off"})
    assert again.status_code == 409  # the domain's rule: every machine is already off
    on = world.client.post(page_of(world) + "/power", data={"csrf": csrf, "action": "on"}, follow_redirects=False)
    assert on.status_code == 303
    world.runtime.catch_up()
    assert [m["power"] for m in world.runtime.app.deployment(deployment_id(world)).machines] == ["poweredOn"] * 2
