"""The console's Leases page: what ends soon, with extend and keep buttons that go through the API's rules."""

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


def test_the_leases_page_lists_ending_leases_and_extends_them(world: World) -> None:
    runtime, deployment_id = world.runtime, UUID(world.ids["{deployment_id}"])
    runtime.app.change_lease(deployment_id, {"extend_by": "P2D"}, actor="setup")
    runtime.catch_up()
    before = runtime.app.deployment(deployment_id).view()["lease"]["expires_at"]
    csrf = world.sign_in("operator")
    deployment_page = world.client.get(f"/ui/deployments/{deployment_id}").text
    assert f"⌛</span> {before[:10]}" in deployment_page  # the lease badge, on the board and the deployment
    assert f"⌛</span> {before[:10]}" in world.client.get("/ui/").text
    page = world.client.get("/ui/leases")
    assert page.status_code == 200
    assert f'data-deployment="{deployment_id}"' in page.text
    assert "lease ends" in page.text
    extended = world.client.post(
        f"/ui/leases/{deployment_id}", data={"csrf": csrf, "extend_by": "P3D"}, follow_redirects=False
    )
    assert extended.status_code == 303
    after = runtime.app.deployment(deployment_id).view()["lease"]["expires_at"]
    assert after > before
    # A viewer sees the page (its reads are filtered) but may not extend.
    csrf = world.sign_in("viewer")
    refused = world.client.post(f"/ui/leases/{deployment_id}", data={"csrf": csrf, "keep": "true"})
    assert refused.status_code == 403
    world.sign_in("no-role")
    assert str(deployment_id) not in world.client.get("/ui/leases").text
