"""Capture in the console without a browser: the form is offered to exactly those who may capture,
"Preview" shows the dry run (machines, claims, refusals naming the VM), "Capture" records it, the
deployment carries a "captured" badge, and Undeploy asks whether to let go of the VMs or destroy them.
The browser walk-through is in test_console_capture_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from uuid import UUID

import pytest

from adapters.vcenter.simulated import SimulatedVCenter
from tests.e2e.test_console_access import World, build_world
from tests.support import ROOT_POOL


@pytest.fixture
def world() -> Iterator[World]:
    built = build_world()  # holds LEGACY_1, a VM made before Stagekeeper
    yield built
    built.runtime.close()


def vcenter_of(world: World) -> SimulatedVCenter:
    vcenter = world.runtime.vcenter
    assert isinstance(vcenter, SimulatedVCenter)
    return vcenter


def service_path(world: World) -> str:
    return f"/ui/services/{world.ids['{service_id}']}"


def stage_options(page: str) -> list[str]:
    select = page.split('id="cap-stage"')[1].split("</select>")[0]
    return re.findall(r"<option(?: selected)?>([^<]+)</option>", select)


def post_capture(world: World, csrf: str, intent: str, **fields: str) -> tuple[int, str, str]:
    data = {"csrf": csrf, "stage": "test", "configuration": "legacy", "intent": intent, **fields}
    response = world.client.post(service_path(world) + "/capture", data=data, follow_redirects=False)
    return response.status_code, response.text, response.headers.get("location", "")


def test_the_capture_form_is_offered_to_owners_who_operate_a_stage_and_lists_only_those_stages(world: World) -> None:
    world.sign_in("owner")  # olivia: owner, and stage-operator of 'test' only
    page = world.client.get(service_path(world)).text
    assert stage_options(page) == ["test"]
    world.sign_in("admin")  # owner everywhere, operator outside the restricted 'prod'
    page = world.client.get(service_path(world)).text
    assert stage_options(page) == ["int", "test", "spare"]
    for role in ("operator", "viewer", "prod-operator"):
        world.sign_in(role)
        assert "Capture running VMs" not in world.client.get(service_path(world)).text, role


def test_preview_shows_the_configuration_claims_and_each_refusal_and_records_nothing(world: World) -> None:
    vcenter = vcenter_of(world)
    vcenter.add_existing_vm("OLD_1", ROOT_POOL, snapshots=["before-upgrade"])
    csrf = world.sign_in("owner")
    head = world.runtime.app.head()
    status, page, _ = post_capture(world, csrf, "preview", vms="LEGACY_1\nOLD_1", reason="look first")
    assert status == 200, page
    preview = page.split('id="capture-preview"')[1]
    row = re.sub(r"<[^>]+>", " ", preview.split('data-machine="legacy-1"')[1].split("</tr>")[0])
    assert "2 vCPU" in row
    assert "2048 MiB" in row
    assert "10.50.0.7" in row
    assert "00:0c:29:50:00:07" in row
    assert "vmxnet3" in row
    refusals = preview.split('id="capture-refusals"')[1].split("</ul>")[0]
    assert "OLD_1" in refusals
    assert "before-upgrade" in refusals
    claims = preview.split('id="capture-claims"')[1]
    assert "10.50.0.7" in claims
    assert "00:0c:29:50:00:07" in claims
    assert 'name="vms"' in page
    assert "LEGACY_1\nOLD_1</textarea>" in page
    assert world.runtime.app.head() == head  # nothing recorded


def test_capture_records_a_deployment_with_a_captured_badge_and_a_bad_field_is_shown_next_to_it(
    world: World,
) -> None:
    csrf = world.sign_in("owner")
    status, page, _ = post_capture(world, csrf, "capture", vms="LEGACY_1", folder="/DC0/vm")
    assert status == 422
    assert re.search(r'id="cap-folder"[^>]*aria-invalid="true"', page)
    assert "give exactly one of vms, folder or resource_pool" in page.split('id="cap-folder"')[1].split("</div>")[0]
    status, _, location = post_capture(world, csrf, "capture", vms="LEGACY_1", reason="adopt")
    assert status == 303
    deployment_id = location.rsplit("/", 1)[1]
    deployment = world.runtime.app.deployment(UUID(deployment_id))
    assert (deployment.captured, deployment.stage, deployment.state) == (True, "test", "deployed")
    assert "tag-captured" in world.client.get(location).text
    world.runtime.catch_up()
    board = world.client.get("/ui/").text
    card = board.split(f'data-deployment="{deployment_id}"')[1].split("</a>")[0]
    assert "captured" in card
    assert "captured" in world.client.get("/ui/?view=list").text
    status, page, _ = post_capture(world, csrf, "capture", vms="LEGACY_1", configuration="again")
    assert status == 409
    refused = page.split('id="capture-refused"')[1].split("</p>")[0]
    assert "LEGACY_1" in refused
    assert deployment_id in refused


def test_undeploy_of_a_captured_deployment_offers_let_go_or_destroy_and_let_go_leaves_the_vm_running(
    world: World,
) -> None:
    csrf = world.sign_in("owner")
    _, _, location = post_capture(world, csrf, "capture", vms="LEGACY_1")
    deployment_id = UUID(location.rsplit("/", 1)[1])
    world.runtime.catch_up()  # the process manager tags the VM
    page = world.client.get(location).text
    dialog = page.split('id="undeploy-dialog"')[1].split("</dialog>")[0]
    assert 'name="destroy_vms" value="false"' in dialog
    assert ">Let go (leave VMs running)</button>" in dialog
    assert 'name="destroy_vms" value="true"' in dialog
    assert ">Destroy VMs</button>" in dialog
    forged = world.client.post(location + "/undeploy", data={"csrf": csrf, "destroy_vms": "maybe"})
    assert forged.status_code == 422
    assert "destroy_vms" in forged.text
    choice = {"csrf": csrf, "destroy_vms": "false", "reason": "hand back"}
    let_go = world.client.post(location + "/undeploy", data=choice, follow_redirects=False)
    assert let_go.status_code == 303
    world.runtime.catch_up()
    assert world.runtime.app.deployment(deployment_id).state == "undeployed"
    legacy = [vm for vm in vcenter_of(world).all_vms() if vm.name == "LEGACY_1"]
    assert [(vm.powered_on, vm.deployment_id) for vm in legacy] == [(True, None)]


def test_destroy_vms_is_refused_to_a_viewer_and_built_deployments_keep_a_plain_undeploy(world: World) -> None:
    owner_csrf = world.sign_in("owner")
    _, _, location = post_capture(world, owner_csrf, "capture", vms="LEGACY_1")
    csrf = world.sign_in("viewer")
    forged = world.client.post(location + "/undeploy", data={"csrf": csrf, "destroy_vms": "true"})
    assert forged.status_code == 403
    assert [vm.name for vm in vcenter_of(world).all_vms() if vm.name == "LEGACY_1"] == ["LEGACY_1"]
    world.sign_in("operator")
    built = world.client.get(f"/ui/deployments/{world.ids['{deployment_id}']}").text
    dialog = built.split('id="undeploy-dialog"')[1].split("</dialog>")[0]
    assert "destroy_vms" not in dialog
    assert ">Undeploy</button>" in dialog
