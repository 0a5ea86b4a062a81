"""The console's Media and Storage pages, without a browser: upload as the page's script does,
the list, a delete refused while attached (shown inline), and the dependency tree with sizes."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from tests.e2e.test_console_access import World, build_world
from tests.support import machine


@pytest.fixture
def world() -> Iterator[World]:
    built = build_world()
    yield built
    built.runtime.close()


def test_an_owner_uploads_from_the_page_and_sees_it_listed(world: World) -> None:
    csrf = world.sign_in("owner")
    page = world.client.get("/ui/media")
    assert 'id="media-upload"' in page.text
    assert "media.js" in page.text
    sent = world.client.post(
        "/ui/media/upload", params={"name": "tools.iso"}, content=b"\x01" * 5000,
        headers={"content-type": "application/octet-stream", "x-csrf-token": csrf},
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    world.runtime.catch_up()  # this world runs no workers
    listed = world.client.get("/ui/media", params={"at": sent.json()["position"]}).text
    assert "tools.iso" in listed
    assert "5,000 bytes" in listed
    forged = world.client.post(
        "/ui/media/upload", params={"name": "evil.iso"}, content=b"x",
        headers={"content-type": "application/octet-stream", "x-csrf-token": "forged"},
    )  # fmt: skip
    assert forged.status_code == 403


def test_a_viewer_is_offered_no_upload_and_no_delete(world: World) -> None:
    world.sign_in("viewer")
    page = world.client.get("/ui/media").text
    assert 'id="media-upload"' not in page
    assert "setup.iso" in page
    assert "/delete" not in page


def test_deleting_an_attached_medium_is_refused_on_the_page(world: World) -> None:
    csrf = world.sign_in("admin")
    app = world.runtime.app
    medium = app.medium_named("setup.iso")
    assert medium is not None
    app.add_machine(UUID(world.ids["{configuration_id}"]), machine("iso1", iso="setup.iso"), actor="setup")
    world.runtime.catch_up()
    refused = world.client.post(f"/ui/media/{medium.id}/delete", data={"csrf": csrf})
    assert refused.status_code == 409
    assert "machine &#39;iso1&#39;" in refused.text or "machine 'iso1'" in refused.text


def test_the_storage_page_shows_the_tree_and_its_table(world: World) -> None:
    world.sign_in("admin")
    page = world.client.get("/ui/storage").text
    deployment = world.ids["{deployment_id}"]
    assert 'id="tree"' in page
    assert f'data-node="{deployment}"' in page  # web1 and app1 are linked clones of tpl-ubuntu-2404
    assert f'<tr data-row="{deployment}">' in page
    assert "own 16 GiB" in page  # the template's base disk
    world.sign_in("no-role")
    hidden = world.client.get("/ui/storage").text
    assert deployment not in hidden
    assert "not shown" in hidden


def test_the_machine_form_keeps_and_changes_the_attached_iso(world: World) -> None:
    csrf = world.sign_in("admin")
    configuration_id = world.ids["{configuration_id}"]
    form = {
        "csrf": csrf, "name": "web1", "template": "tpl-ubuntu-2404", "cpus": "2", "memory_mib": "2048",
        "clone_mode": "linked", "nics": "front", "os": "linux", "ip_mode": "static-pool", "iso": "missing.iso",
    }  # fmt: skip
    refused = world.client.post(f"/ui/configurations/{configuration_id}/machines/web1", data=form)
    assert refused.status_code == 422
    assert "no medium named" in refused.text
    changed = world.client.post(
        f"/ui/configurations/{configuration_id}/machines/web1", data={**form, "iso": "setup.iso"},
        follow_redirects=False,
    )  # fmt: skip
    assert changed.status_code == 303, changed.text
    machine_now = world.runtime.app.configuration(UUID(configuration_id)).machine("web1")
    assert machine_now["iso"] == "setup.iso"
    page = world.client.get(f"/ui/configurations/{configuration_id}").text
    assert 'name="iso" value="setup.iso"' in page
