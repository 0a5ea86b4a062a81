"""The console's Resources page: stage totals with quotas, usage charts drawn as SVG on the server,
the same numbers in tables, and only the services the viewer may read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest

from tests.e2e.test_console_access import World, build_world
from tests.support import FixedClock, machine, stages


@pytest.fixture
def world() -> Iterator[World]:
    built = build_world()
    runtime = built.runtime
    service_id = UUID(built.ids["{service_id}"])
    runtime.app.update_stage(service_id, "int", {"quota": {"vcpus": 8}}, actor="setup")
    secret = runtime.app.register_service("secret-project", "", stages("int", pools="secret-"), actor="setup").value
    configuration = runtime.app.create_configuration(
        secret.id, "hidden", "", [{"name": "front"}], [machine("db7")], "setup"
    ).value
    runtime.app.deploy(configuration.id, "int", actor="setup")
    runtime.catch_up()
    assert isinstance(runtime.clock, FixedClock)
    runtime.clock.current = datetime.now(UTC)
    runtime.usage.collector.collect_once()
    yield built
    runtime.close()


def test_the_resources_page_draws_charts_and_tables_of_the_same_figures(world: World) -> None:
    world.sign_in("admin")
    page = world.client.get("/ui/resources", params={"service": world.ids["{service_id}"], "stage": "int"})
    assert page.status_code == 200, page.text
    html = page.text
    assert "Later" not in html  # the placeholder is gone
    assert html.count('<svg class="chart"') >= 5  # vCPUs, memory, disk, CPU, and the datastore
    assert "<script" not in html.split("<main")[1]  # drawn on the server, no chart library
    row = re.search(r'<tr data-stage="payroll/int">(.*?)</tr>', html, re.S)
    assert row is not None
    # Two machines of 2 vCPUs each, against a quota of 8: 50 %.
    assert re.search(r"<td>4 <span class=\"muted\">of 8</span>", row.group(1))
    assert 'value="50"' in row.group(1)
    assert "polyline" in html
    table = re.search(r'<table class="list" id="usage-points">(.*?)</table>', html, re.S)
    assert table is not None
    assert "<td>2</td><td>4</td><td>4096</td>" in table.group(1)  # machines, vCPUs, memory of the last points
    assert "LocalDS_0" in html


def test_a_viewer_sees_only_the_services_they_may_read_and_no_datastore_totals(world: World) -> None:
    world.sign_in("viewer")
    page = world.client.get("/ui/resources")
    assert page.status_code == 200, page.text
    assert "payroll" in page.text
    assert "secret-project" not in page.text
    assert "Datastore capacity is shown to administrators" in page.text
    world.sign_in("viewer")
    refused = world.client.get("/ui/resources", params={"service": "not-an-id"})
    assert refused.status_code == 422
    world.sign_in("no-role")
    empty = world.client.get("/ui/resources")
    assert empty.status_code == 200
    assert "No stage you may read." in empty.text
    assert "secret-project" not in empty.text
