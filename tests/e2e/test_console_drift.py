"""Drift, verification and previews in the web console, without a browser: the badge on the board
and the deployment page, adopt and revert from the page, the preview in the promote dialog."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from adapters.vcenter.simulated import SimulatedVCenter
from tests.e2e.test_console_access import World, build_world


@pytest.fixture
def world() -> Iterator[World]:
    built = build_world()
    yield built
    built.runtime.close()


def drifted(world: World) -> tuple[UUID, str]:
    """Memory of web1 changed in vCenter behind Stagekeeper's back, found by a drift cycle."""
    deployment_id = UUID(world.ids["{deployment_id}"])
    vm_id = str(world.runtime.app.deployment(deployment_id).machine("web1")["vm_id"])
    vcenter = world.runtime.vcenter
    assert isinstance(vcenter, SimulatedVCenter)
    vcenter.enable_hot_add(vm_id)
    vcenter.reconfigure(vm_id, 2, 8192, ())
    world.runtime.drift_check.run_cycle()
    world.runtime.catch_up()
    return deployment_id, vm_id


def test_the_board_and_the_page_show_drift_and_operators_resolve_it(world: World) -> None:
    deployment_id, vm_id = drifted(world)
    world.sign_in("viewer")
    assert "≠</span> drift" in world.client.get("/ui/board").text
    page = world.client.get(f"/ui/deployments/{deployment_id}").text
    assert 'data-drift="web1.memory_mib"' in page
    assert "/drift/web1.memory_mib/revert" not in page  # a viewer resolves nothing
    csrf = world.sign_in("operator")
    page = world.client.get(f"/ui/deployments/{deployment_id}").text
    assert "/drift/web1.memory_mib/revert" in page
    refused = world.client.post(f"/ui/deployments/{deployment_id}/drift/web1.memory_mib/adopt", data={"csrf": csrf})
    assert refused.status_code == 422  # adopting needs a reason
    done = world.client.post(
        f"/ui/deployments/{deployment_id}/drift/web1.memory_mib/revert", data={"csrf": csrf, "reason": "no"},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303
    world.runtime.catch_up()
    vcenter = world.runtime.vcenter
    assert isinstance(vcenter, SimulatedVCenter)
    assert (
        vcenter.hardware(vm_id)[1] == world.runtime.app.deployment(deployment_id).machine("web1")["spec"]["memory_mib"]
    )
    checked = world.client.post(f"/ui/deployments/{deployment_id}/check", data={"csrf": csrf}, follow_redirects=False)
    assert checked.status_code == 303
    assert 'data-drift="web1.memory_mib"' not in world.client.get(f"/ui/deployments/{deployment_id}").text


def test_the_promote_dialog_loads_what_changes_in_the_next_stage(world: World) -> None:
    deployment_id = world.ids["{deployment_id}"]
    world.sign_in("operator")
    page = world.client.get(f"/ui/deployments/{deployment_id}").text
    assert f'hx-get="/ui/deployments/{deployment_id}/preview/promote"' in page
    preview = world.client.get(f"/ui/deployments/{deployment_id}/preview/promote").text
    assert "In <strong>test</strong>" in preview
    assert "VM of <strong>web1</strong>: move" in preview
    upgrade = world.client.get(f"/ui/deployments/{deployment_id}/preview/upgrade", params={"version": 1}).text
    assert "machine" in upgrade or "alert" in upgrade


def test_administrators_see_orphan_vms(world: World) -> None:
    vcenter = world.runtime.vcenter
    assert isinstance(vcenter, SimulatedVCenter)
    vm_id = str(world.runtime.app.deployment(UUID(world.ids["{deployment_id}"])).machine("web1")["vm_id"])
    vcenter.tag_vm(vm_id, UUID(int=9), "web1")
    world.sign_in("operator")
    assert world.client.get("/ui/drift/orphans").status_code == 403
    world.sign_in("admin")
    page = world.client.get("/ui/drift/orphans").text
    assert f'data-orphan="{vm_id}"' in page
    assert "no such deployment in the history" in page
