"""Export a service to a signed file and import it into another instance, on every persistence."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from domain.errors import ConflictError, ValidationError
from domain.portability import chain
from tests.support import machine, runtime_for, stages


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Runtime]:
    other = runtime_for(f"sqlite:///{tmp_path}/target.db")
    other.app.import_templates(None, True, actor="admin")
    yield other
    other.close()


def exported(runtime: Runtime) -> tuple[UUID, UUID, dict[str, Any]]:
    app = runtime.app
    service = app.register_service("payroll", "Monthly payroll", stages("int", "test"), actor="olivia").value
    app.grant_role(service.id, "viewer", None, "cn=payroll-readers,dc=example,dc=com", None, actor="olivia")
    configuration = app.create_configuration(
        service.id, "three-tier", "", [{"name": "front"}], [machine("web1")], "olivia", reason="first cut"
    ).value
    app.add_machine(configuration.id, machine("web2"), "olivia", reason="more web")
    app.change_machine(configuration.id, "web1", machine("web1", cpus=4), "petra", reason="busier")
    old = app.create_configuration(service.id, "legacy", "", [{"name": "front"}], [machine("app1")], "olivia").value
    app.retire_configuration(old.id, "olivia", "replaced by three-tier")
    app.deploy(configuration.id, "int", actor="olivia")  # admitted in the source; stays there
    runtime.catch_up()
    ids = [configuration.id, old.id]
    return service.id, configuration.id, app.export_service(service.id, ids, "olivia")


def test_an_imported_service_has_the_same_history(runtime: Runtime, target: Runtime) -> None:
    service_id, configuration_id, document = exported(runtime)
    assert document["chain"]["count"] == len(document["records"])
    imported = target.app.import_service(copy.deepcopy(document), "admin", reason="moving datacentre").value
    assert imported.id == service_id
    assert imported.name == "payroll"
    assert [g["group"] for g in imported.grants.values()] == ["cn=payroll-readers,dc=example,dc=com"]

    def story(events: list[Any]) -> list[tuple[str, Any, Any]]:
        return [(type(e).__qualname__, e.timestamp, e.actor) for e in events]

    assert story(list(target.app.events.get(configuration_id))) == story(list(runtime.app.events.get(configuration_id)))
    assert target.app.definition_at(configuration_id, 2) == runtime.app.definition_at(configuration_id, 2)
    # The deployment stayed behind: the stages are free; the import itself is in the audit.
    target.app.remove_stage(service_id, "test", actor="admin")
    target.catch_up()
    kinds = [r["event_type"] for r in target.store.query("SELECT event_type FROM sk_audit ORDER BY position")]
    assert "Service.Imported" in kinds
    assert "Configuration.MachineChanged" in kinds
    # Its names are taken here now, as if it had been made here.
    with pytest.raises(ConflictError):
        target.app.register_service("PAYROLL", "", stages("x", pools="other-"), actor="admin")
    with pytest.raises(ConflictError, match="exists here already"):
        target.app.import_service(copy.deepcopy(document), "admin")


@pytest.mark.parametrize(
    "tamper",
    ["change", "remove", "swap", "head"],
)
def test_a_file_whose_chain_does_not_verify_is_refused_whole(runtime: Runtime, target: Runtime, tamper: str) -> None:
    _, _, document = exported(runtime)
    records = document["records"]
    if tamper == "change":
        records[3]["state"]["actor"] = "mallory"
    elif tamper == "remove":
        del records[2]
    elif tamper == "swap":
        records[1], records[2] = records[2], records[1]
    else:
        del records[-1]  # cut short: every remaining hash is right, the head is not
    head = target.app.head()
    with pytest.raises(ValidationError, match=r"hash chain does not verify|cut short"):
        target.app.import_service(document, "admin")
    assert target.app.head() == head


def test_a_name_or_pool_taken_here_refuses_the_import(runtime: Runtime, target: Runtime) -> None:
    _, _, document = exported(runtime)
    target.app.register_service("payroll", "", stages("x", pools="mine-"), actor="admin")
    head = target.app.head()
    with pytest.raises(ConflictError):
        target.app.import_service(document, "admin")
    assert target.app.head() == head


def test_records_that_are_not_events_of_the_service_are_refused(runtime: Runtime, target: Runtime) -> None:
    _, _, document = exported(runtime)
    document["records"][0]["topic"] = "os:system"
    for record, value in zip(document["records"], chain(document["records"]), strict=True):
        record["hash"] = value
    document["chain"]["head"] = document["records"][-1]["hash"]
    with pytest.raises(ValidationError, match="topic"):
        target.app.import_service(document, "admin")
