"""Copies, fences, snapshots and swaps in the console without a browser: what is offered to whom,
the fence forced by a stage that always fences, deploy behind a fence from the configuration page,
snapshot and revert, the Copies & fences page (readable services only). The browser walk-through
is in test_console_copies_browser.py."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from api.app import create_app
from api.auth import Principal
from api.ui.session import COOKIE, Session
from tests.fencing import three_tier
from tests.support import runtime_for, settings_for

USERS = {
    "admin": Principal("alice", True, "password"),
    "tester": Principal("tess", False, "password"),  # stage-operator of test only
    "stranger": Principal("sam", False, "password"),  # no role on the service
}


@dataclass
class Shop:
    client: TestClient
    runtime: Runtime
    configuration_id: UUID
    prod_id: UUID

    def sign_in(self, who: str) -> str:
        session = Session.start(USERS[who], time.time())
        self.client.cookies.clear()
        self.client.cookies.set(COOKIE, self.client.app.state.console.codec.encode(session))  # type: ignore[attr-defined]
        return session.csrf

    def page(self, deployment_id: UUID) -> str:
        return str(self.client.get(f"/ui/deployments/{deployment_id}").text)


@pytest.fixture
def shop() -> Iterator[Shop]:
    runtime = runtime_for("memory://")
    runtime.ensure_admin()
    app = runtime.app
    app.import_templates(None, True, actor="setup")
    configuration_id = three_tier(runtime, fence="always")  # stages test (always fenced) and prod
    service_id = app.configuration(configuration_id).service_id
    app.grant_role(service_id, "stage-operator", "tess", None, "test", actor="setup")
    prod_id = app.deploy(configuration_id, "prod", actor="setup").value.id
    runtime.catch_up()
    client = TestClient(create_app(settings_for("memory://"), runtime=runtime, start_workers=False))
    yield Shop(client, runtime, configuration_id, prod_id)
    runtime.close()


def test_copy_offers_the_stages_one_operates_and_the_fence_is_locked_where_the_stage_always_fences(
    shop: Shop,
) -> None:
    shop.sign_in("tester")  # reads production (a stage-operator reads the service) and operates test
    page = shop.page(shop.prod_id)
    dialog = page.split('id="copy-dialog"')[1].split("</dialog>")[0]
    assert re.findall(r'<option value="([^"]+)" data-fence="([^"]+)"', dialog) == [("test", "always")]
    for refused in ("snapshot-dialog", "swap-dialog", "upgrade-dialog", ">Undeploy</button>"):
        assert refused not in page, refused  # production is not tess's stage
    csrf = shop.sign_in("tester")
    forged = shop.client.post(f"/ui/deployments/{shop.prod_id}/copy", data={"csrf": csrf, "stage": "prod"})
    assert forged.status_code == 403
    made = shop.client.post(f"/ui/deployments/{shop.prod_id}/copy", data={"csrf": csrf, "stage": "test"},
                            follow_redirects=False)  # fmt: skip
    assert made.status_code == 303
    copy_id = UUID(made.headers["location"].rsplit("/", 1)[1])
    shop.runtime.catch_up()
    copy = shop.runtime.app.deployment(copy_id)
    assert copy.fence is not None  # no box checked: the stage fences every deployment
    page = shop.page(copy_id)
    assert "tag-fenced" in page
    assert "tag-copy" in page
    assert 'id="fence-networks"' in page
    assert len(re.findall(r'<tr data-machine="(web|app|db)"><td>', page.split('id="fence-nat"')[1])) == 3
    assert "swap-dialog" not in page  # swapping into prod takes prod's operators


def test_snapshot_then_revert_from_the_page_and_a_stale_name_is_refused(shop: Shop) -> None:
    csrf = shop.sign_in("admin")
    path = f"/ui/deployments/{shop.prod_id}"
    assert "revert-dialog" not in shop.page(shop.prod_id)  # nothing to revert to yet
    taken = shop.client.post(path + "/snapshot", data={"csrf": csrf, "name": "before"}, follow_redirects=False)
    assert taken.status_code == 303
    shop.runtime.catch_up()
    page = shop.page(shop.prod_id)
    assert re.search(r'<select id="revert-snapshot" name="snapshot"><option>before</option>', page)
    again = shop.client.post(path + "/snapshot", data={"csrf": csrf, "name": "before"})
    assert again.status_code == 409
    assert "a snapshot &#39;before&#39; already" in again.text
    missing = shop.client.post(path + "/revert", data={"csrf": csrf, "snapshot": "never"})
    assert missing.status_code == 404
    reverted = shop.client.post(path + "/revert", data={"csrf": csrf, "snapshot": "before"}, follow_redirects=False)
    assert reverted.status_code == 303
    shop.runtime.catch_up()
    assert shop.runtime.app.deployment(shop.prod_id).snapshot_work is None


def test_deploy_behind_a_fence_from_the_configuration_page_and_the_copies_page_lists_it(shop: Shop) -> None:
    csrf = shop.sign_in("admin")
    path = f"/ui/configurations/{shop.configuration_id}"
    dialog = shop.client.get(path).text.split('id="deploy-dialog"')[1].split("</dialog>")[0]
    assert 'data-fence="optional">prod' in dialog
    made = shop.client.post(path + "/deploy", data={"csrf": csrf, "stage": "prod", "fence": "on"},
                            follow_redirects=False)  # fmt: skip
    assert made.status_code == 303
    fenced_id = made.headers["location"].rsplit("/", 1)[1]
    shop.runtime.catch_up()
    listing = shop.client.get("/ui/copies").text
    assert f'data-deployment="{fenced_id}"' in listing
    assert f'data-deployment="{shop.prod_id}"' not in listing  # neither fenced nor a copy
    shop.sign_in("stranger")
    assert fenced_id not in shop.client.get("/ui/copies").text


def test_an_owner_sets_a_stages_fenced_networks_and_a_wrong_field_is_shown_next_to_it(shop: Shop) -> None:
    csrf = shop.sign_in("admin")
    service_id = shop.runtime.app.configuration(shop.configuration_id).service_id
    path = f"/ui/services/{service_id}/stages/prod/fencing"
    form = {"csrf": csrf, "dvswitch": "DVS0", "vlan_first": "300", "vlan_last": "9000", "fence": "always",
            "fence_gateway_template": "tpl-ubuntu-2404", "external_network": "VM Network"}  # fmt: skip
    wrong = shop.client.post(path, data=form)
    assert wrong.status_code == 422
    assert re.search(r'id="fn-last-2"[^>]*value="9000"[^>]*aria-invalid="true"', wrong.text)
    assert (
        "vlan_range.last must be an integer from 1 to 4094" in wrong.text.split('id="fn-last-2"')[1].split("<label")[0]
    )
    saved = shop.client.post(path, data={**form, "vlan_last": "399", "copy_mode": "linked"}, follow_redirects=False)
    assert saved.status_code == 303
    prod = shop.runtime.app.service(service_id).stage("prod")
    assert (prod["dvswitch"], prod["vlan_range"], prod["fence"], prod["copy_mode"]) == (
        "DVS0",
        {"first": 300, "last": 399},
        "always",
        "linked",
    )
    shop.sign_in("tester")
    assert "Save fenced networks" not in shop.client.get(f"/ui/services/{service_id}").text
