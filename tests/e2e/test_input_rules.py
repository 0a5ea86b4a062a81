"""Each input rule over HTTP: the field a 422 names, and good input that still works."""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.vcenter.simulated import DEFAULT_TEMPLATES, SimulatedVCenter
from api.app import create_app
from domain.ports import TemplateInfo
from tests.e2e.conftest import AUTH, settle
from tests.e2e.test_api import setup_configuration, setup_service
from tests.support import ROOT_POOL, runtime_for, settings_for, stages

S, C = "/api/v1/services/{service}", "/api/v1/configurations/{configuration}"
LONG_REASON = "r" * 2049
# (method, path, body, the field the 422 names)
HIDDEN: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/v1/services", {"name": "dupname\n", "stages": stages("int")}, "name"),
    ("POST", "/api/v1/services", {"name": "pay\u200broll", "stages": stages("int")}, "name"),
    ("POST", "/api/v1/services", {"name": "p", "stages": [{"name": "\u202eint", "resource_pool": ROOT_POOL}]},
     "stages[0].name"),
    ("POST", "/api/v1/services", {"name": "p", "stages": [{"name": "i", "resource_pool": ROOT_POOL + "/../x"}]},
     "stages[0].resource_pool"),
    ("PATCH", S, {"description": "a\u0000b"}, "description"),
    ("PATCH", S, {"description": "ok", "reason": "why\u202e"}, "reason"),
    ("PATCH", S, {"description": "ok", "reason": LONG_REASON}, "reason"),
    ("PATCH", S + "/stages/test", {"name": "te\u2060st"}, "name"),
    ("PATCH", S + "/stages/test", {"resource_pool": ROOT_POOL + "/pay\nroll"}, "resource_pool"),
    ("POST", S + "/stages", {"name": "x\u0085", "resource_pool": ROOT_POOL}, "name"),
    ("PUT", S + "/stages/order", {"order": ["int", "test\u0000", "prod"]}, "order[1]"),
    ("POST", S + "/grants", {"role": "viewer", "user": "bob\u0000"}, "user"),
    ("POST", S + "/grants", {"role": "viewer", "group": "not a dn"}, "group"),
    ("POST", S + "/grants", {"role": "stage-operator", "user": "bob", "stage": "int\u200e"}, "stage"),
    ("POST", S + "/configurations", {"name": "p4\n"}, "name"),
    ("POST", S + "/configurations", {"name": "p4", "networks": [{"name": "n", "description": "\x1b[31m"}]},
     "networks[0].description"),
    ("PATCH", C, {"name": "p3\ufeff"}, "name"),
    ("POST", C + "/networks", {"name": "back\u200c"}, "network.name"),
    ("POST", C + "/machines", {"name": "web9\n", "template": "tpl-ubuntu-2404"}, "machine.name"),
    ("POST", C + "/machines", {"name": "web9", "template": "tpl-ubuntu-2404\u202e"}, "machine.template"),
    ("POST", C + "/machines", {"name": "web9", "template": "tpl-ubuntu-2404", "customization": {"hostname": "h\n"}},
     "machine.customization.hostname"),
    ("POST", C + "/deployments", {"stage": "int\u0000"}, "stage"),
    ("POST", C + "/restore", {"version": 1, "reason": "\ud800"}, "reason"),
    ("POST", "/api/v1/tokens", {"name": "ci\u0000"}, "name"),
    ("POST", "/api/v1/templates/import", {"names": ["tpl-ubuntu-2404\u0000"]}, "names[0]"),
]  # fmt: skip


@pytest.fixture
def made(client: TestClient) -> dict[str, str]:
    service = setup_service(client)
    made = {"service": service["id"], "configuration": setup_configuration(client, service["id"])["id"]}
    settle(client.app.state.runtime)  # type: ignore[attr-defined]
    return made


def test_text_fields_refuse_hidden_characters_naming_the_field(client: TestClient, made: dict[str, str]) -> None:
    app = client.app.state.runtime.app  # type: ignore[attr-defined]
    for method, path, body, field in HIDDEN:
        head = app.head()
        # Sent as ASCII JSON, so a lone surrogate travels as the \ud800 escape a client would send.
        content, headers = json.dumps(body), {"content-type": "application/json"}
        response = client.request(method, path.format(**made), content=content, headers=headers, auth=AUTH)
        assert response.status_code == 422, (method, path, body, response.text)
        assert response.json()["error"]["field"] == field, (method, path, body, response.text)
        assert app.head() == head, (method, path, body)  # nothing written, not even half of it


def test_names_take_letters_of_any_script_and_stay_unique_case_folded(client: TestClient) -> None:
    body = {"name": "Gehaltsabrechnung-Zürich", "stages": stages("intégration", "test")}
    created = client.post("/api/v1/services", json=body, auth=AUTH)
    assert created.status_code == 201, created.text
    assert [s["name"] for s in created.json()["stages"]] == ["intégration", "test"]
    same = {"name": unicodedata.normalize("NFD", "GEHALTSABRECHNUNG-ZÜRICH"), "stages": stages("int")}
    assert client.post("/api/v1/services", json=same, auth=AUTH).status_code == 409
    path = f"/api/v1/services/{created.json()['id']}/stages/INTÉGRATION"
    assert client.patch(path, json={"restricted": True}, auth=AUTH).status_code == 200
    dup = client.post("/api/v1/services", json={"name": "dupname", "stages": stages("int")}, auth=AUTH)
    assert dup.status_code == 201
    again = client.post("/api/v1/services", json={"name": "dupname\n", "stages": stages("int")}, auth=AUTH)
    assert again.status_code == 422
    assert "U+000A" in again.json()["error"]["message"]
    euro = client.post("/api/v1/services", json={"name": "€uro", "stages": stages("int")}, auth=AUTH)
    assert "letters (any script)" in euro.json()["error"]["message"]


def test_request_bodies_are_strict_about_types(client: TestClient, made: dict[str, str]) -> None:
    stage = f"/api/v1/services/{made['service']}/stages/test"
    response = client.patch(stage, json={"restricted": "yes"}, auth=AUTH)
    assert (response.status_code, response.json()["error"]["field"]) == (422, "restricted")
    machine = f"/api/v1/configurations/{made['configuration']}/machines"
    response = client.post(machine, json={"name": "web9", "template": "tpl-ubuntu-2404", "cpus": True}, auth=AUTH)
    assert (response.status_code, response.json()["error"]["field"]) == (422, "cpus")
    response = client.post(machine, json={"name": "web9", "template": "tpl-ubuntu-2404", "cpus": "2"}, auth=AUTH)
    assert (response.status_code, response.json()["error"]["field"]) == (422, "cpus")
    ok = client.post(machine, json={"name": "web9", "template": "tpl-ubuntu-2404", "cpus": 3}, auth=AUTH)
    assert ok.status_code == 201, ok.text
    assert client.get(f"/api/v1/services/{made['service']}", auth=AUTH).json()["stages"][1]["restricted"] is False


@pytest.fixture
def bare_client(tmp_path: Path) -> Iterator[TestClient]:
    """A vCenter that also holds a template with no size recorded."""
    bare = TemplateInfo("tpl-bare", "otherLinux64Guest", "linux", 0, 0, (), 1, "/DC0/vm/tpl-bare")
    runtime = runtime_for(f"sqlite:///{tmp_path}/sk.db", vcenter=SimulatedVCenter(templates=(*DEFAULT_TEMPLATES, bare)))
    runtime.ensure_admin()
    with TestClient(create_app(settings_for(runtime.settings.database_url), runtime=runtime)) as client:
        yield client
    runtime.close()


def test_a_machine_without_a_size_gets_its_templates_size(bare_client: TestClient) -> None:
    client = bare_client
    service = setup_service(client)
    machines = [
        {"name": "db1", "template": "tpl-rhel-9"},
        {"name": "db2", "template": "tpl-rhel-9", "memory_mib": 16384},
        {"name": "bare1", "template": "tpl-bare"},
    ]
    path = f"/api/v1/services/{service['id']}/configurations"
    created = client.post(path, json={"name": "sized", "machines": machines}, auth=AUTH)
    assert created.status_code == 201, created.text
    sizes = {m["name"]: (m["cpus"], m["memory_mib"]) for m in created.json()["machines"]}
    assert sizes == {"db1": (2, 4096), "db2": (2, 16384), "bare1": (1, 1024)}
    added = client.post(
        f"/api/v1/configurations/{created.json()['id']}/machines",
        json={"name": "win1", "template": "tpl-windows-2022", "customization": {"os": "windows"}},
        auth=AUTH,
    )
    assert {m["name"]: m["memory_mib"] for m in added.json()["machines"]}["win1"] == 8192


def test_a_version_out_of_range_is_422_on_every_route(client: TestClient, made: dict[str, str]) -> None:
    path = f"/api/v1/configurations/{made['configuration']}"
    answers = [
        (client.get(path, params={"version": 9}, auth=AUTH), "version"),
        (client.get(f"{path}/diff", params={"from": 9}, auth=AUTH), "from"),
        (client.get(f"{path}/diff", params={"from": 1, "to": 9}, auth=AUTH), "to"),
        (client.post(f"{path}/restore", json={"version": 9}, auth=AUTH), "version"),
        (client.post(f"{path}/deployments", json={"stage": "int", "configuration_version": 9}, auth=AUTH),
         "configuration_version"),
    ]  # fmt: skip
    for response, field in answers:
        assert response.status_code == 422, (field, response.text)
        assert response.json()["error"]["field"] == field
        assert "from 1 to 1" in response.json()["error"]["message"]


def test_a_pool_of_the_whole_internet_is_refused_at_once(client: TestClient, made: dict[str, str]) -> None:
    path = f"/api/v1/services/{made['service']}/stages/test"
    started = time.monotonic()
    response = client.patch(path, json={"ip_pools": [{"cidr": "0.0.0.0/0", "gateway": "0.0.0.1"}]}, auth=AUTH)
    assert time.monotonic() - started < 1.0
    assert (response.status_code, response.json()["error"]["field"]) == (422, "ip_pools[0].cidr")
    bounded = {"cidr": "10.0.0.0/8", "gateway": "10.0.0.1", "first": "10.9.0.1", "last": "10.9.0.254"}
    response = client.patch(path, json={"ip_pools": [bounded]}, auth=AUTH)
    assert response.status_code == 200, response.text
