"""The console's governance: the approvals page, deciding with a reason, the stop-the-line banner."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from tests.e2e.test_console_access import World, build_world


@pytest.fixture
def world() -> Iterator[World]:
    built = build_world()
    yield built
    built.runtime.close()


def test_an_approver_sees_the_request_and_approves_it_with_a_reason(world: World) -> None:
    approval_id = world.ids["{approval_id}"]
    world.sign_in("viewer")  # may read the service, is not in the approvers' group
    page = world.client.get("/ui/approvals")
    assert approval_id in page.text
    assert f"/ui/approvals/{approval_id}/decide" not in page.text
    csrf = world.sign_in("owner")
    page = world.client.get("/ui/approvals")
    assert f"/ui/approvals/{approval_id}/decide" in page.text
    decided = world.client.post(
        f"/ui/approvals/{approval_id}/decide",
        data={"csrf": csrf, "decision": "approve", "reason": "copy is fine"},
        follow_redirects=False,
    )
    assert decided.status_code == 303
    approval = world.runtime.app.approval(UUID(approval_id))
    assert [(d["by"], d["reason"]) for d in approval.approvals] == [("olivia", "copy is fine")]


def test_the_stop_the_line_banner_is_on_every_page_while_the_line_is_stopped(world: World) -> None:
    csrf = world.sign_in("admin")
    assert "The line is stopped" not in world.client.get("/ui/").text
    stopped = world.client.post(
        "/ui/approvals/stop-the-line",
        data={"csrf": csrf, "action": "stop", "reason": "incident 42"},
        follow_redirects=False,
    )
    assert stopped.status_code == 303
    world.sign_in("viewer")
    for page in ("/ui/", "/ui/audit", f"/ui/services/{world.ids['{service_id}']}", "/ui/approvals"):
        text = world.client.get(page).text
        assert "The line is stopped" in text
        assert "incident 42" in text
    csrf = world.sign_in("operator")
    refused = world.client.post(
        f"/ui/deployments/{world.ids['{deployment_id}']}/undeploy", data={"csrf": csrf}, follow_redirects=False
    )
    assert refused.status_code == 409
    assert "incident 42" in refused.text
