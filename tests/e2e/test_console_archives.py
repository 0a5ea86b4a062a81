"""Archives in the console without a browser: "Archive Now" on a deployment page for its stage's
operators only, the catalogue (readable services only) with space per tier, an archive's page with
its files, hold / lift and restore."""

from __future__ import annotations

import re
from uuid import UUID

import pytest

from tests.e2e.test_console_copies import Shop
from tests.e2e.test_console_copies import shop as shop


@pytest.fixture
def archived(shop: Shop) -> UUID:
    csrf = shop.sign_in("admin")
    made = shop.client.post("/ui/archives", data={"csrf": csrf, "deployment_id": str(shop.prod_id)},
                            follow_redirects=False)  # fmt: skip
    assert made.status_code == 303, made.text
    archive_id = UUID(made.headers["location"].rsplit("/", 1)[1])
    shop.runtime.catch_up()
    return archive_id


def test_archive_now_is_offered_to_the_stage_operators_only(shop: Shop) -> None:
    shop.sign_in("admin")
    assert 'id="archive-now"' in shop.page(shop.prod_id)
    csrf = shop.sign_in("tester")  # reads production, operates test only
    assert 'id="archive-now"' not in shop.page(shop.prod_id)
    forged = shop.client.post("/ui/archives", data={"csrf": csrf, "deployment_id": str(shop.prod_id)})
    assert forged.status_code == 403
    junk = shop.client.post("/ui/archives", data={"csrf": csrf, "deployment_id": "not-an-id"})
    assert junk.status_code == 422


def test_the_catalogue_and_an_archive_page_show_files_hold_and_restore(shop: Shop, archived: UUID) -> None:
    csrf = shop.sign_in("admin")
    catalogue = shop.client.get("/ui/archives").text
    assert f'<tr data-archive="{archived}">' in catalogue
    assert re.search(r'<td class="mono">LocalDS_1</td><td>datastore</td><td>\d+</td>', catalogue)
    page = shop.client.get(f"/ui/archives/{archived}").text
    assert '<span class="state" id="archive-state">complete</span>' in page
    assert len(re.findall(r"<td class=\"mono\">[^<]+\.vmdk</td>", page)) >= 3
    held = shop.client.post(f"/ui/archives/{archived}/hold", data={"csrf": csrf, "hold": "on", "reason": "audit"},
                            follow_redirects=False)  # fmt: skip
    assert held.status_code == 303
    assert '<span class="tag">on hold</span>' in shop.client.get("/ui/archives").text
    assert shop.runtime.app.archive(archived).hold
    lifted = shop.client.post(f"/ui/archives/{archived}/hold", data={"csrf": csrf}, follow_redirects=False)
    assert lifted.status_code == 303
    assert not shop.runtime.app.archive(archived).hold
    # Restoring into the archived deployment's own stage while it lives clashes with its addresses.
    restore = shop.client.post(f"/ui/archives/{archived}/restore", data={"csrf": csrf, "stage": "prod"},
                               follow_redirects=False)  # fmt: skip
    assert restore.status_code == 303
    shop.runtime.catch_up()
    page = shop.client.get(f"/ui/archives/{archived}").text
    assert re.search(r'<li><span class="state">failed</span> into <strong>prod</strong>', page)


def test_the_catalogue_hides_archives_of_services_one_holds_no_role_on(shop: Shop, archived: UUID) -> None:
    shop.sign_in("stranger")
    assert str(archived) not in shop.client.get("/ui/archives").text
    assert shop.client.get(f"/ui/archives/{archived}").status_code == 403
