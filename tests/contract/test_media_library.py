"""The media library and safe delete over the simulated vCenter, on every persistence: upload,
attach to a machine, deploy (checked, then connected), deletion refused while attached, and the
template catalogue refusing to drop a template that linked clones read through."""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from domain.errors import ConflictError, ValidationError
from domain.media import medium_path
from tests.support import machine, stages

DC, DS = "DC0", "LocalDS_0"
ISO = b"CD001" * 1000


def upload(runtime: Runtime, name: str = "alpine.iso", body: bytes = ISO) -> UUID:
    pieces = [body[i : i + 1024] for i in range(0, len(body), 1024)]
    return runtime.app.upload_medium(name, len(body), pieces, DC, DS, 1 << 20, actor="alice").value.id


@pytest.fixture
def service_id(runtime: Runtime) -> UUID:
    return runtime.app.register_service("shop", "", stages("int"), actor="a").value.id


def configure(runtime: Runtime, service_id: UUID, **extra: Any) -> UUID:
    return runtime.app.create_configuration(
        service_id, "web", "", [{"name": "front"}], [machine("web1", **extra)], actor="a"
    ).value.id


def test_an_upload_records_size_and_sha256_and_lies_on_the_datastore(
    runtime: Runtime, vcenter: SimulatedVCenter
) -> None:
    medium = runtime.app.medium(upload(runtime))
    assert (medium.name, medium.size, medium.sha256) == ("alpine.iso", len(ISO), hashlib.sha256(ISO).hexdigest())
    assert medium.path == medium_path(medium.id)
    assert vcenter.file_digest(DC, DS, medium.path) == medium.sha256
    found = vcenter.search_datastore(DC, DS, "stagekeeper-media", "*.iso")
    assert [(f.path, f.size) for f in found] == [(medium.path, len(ISO))]


def test_names_are_unique_and_a_refused_upload_leaves_no_file(runtime: Runtime, vcenter: SimulatedVCenter) -> None:
    upload(runtime)
    with pytest.raises(ConflictError, match="already taken"):
        upload(runtime, "ALPINE.iso")
    assert len(vcenter.search_datastore(DC, DS, "stagekeeper-media", "*.iso")) == 1
    with pytest.raises(ValidationError, match="1 to 1048576 bytes"):
        runtime.app.upload_medium("big.iso", 2 << 20, [b""], DC, DS, 1 << 20, actor="alice")
    with pytest.raises(ValidationError, match="/"):
        upload(runtime, "../etc/passwd")


def test_a_machine_attaches_only_a_medium_of_the_library(runtime: Runtime, service_id: UUID) -> None:
    with pytest.raises(ValidationError) as refused:
        configure(runtime, service_id, iso="missing.iso")
    assert refused.value.field == "machines[0].iso"
    upload(runtime)
    configuration = runtime.app.configuration(configure(runtime, service_id, iso="alpine.iso"))
    assert configuration.machines[0]["iso"] == "alpine.iso"


def test_deploy_connects_the_iso_and_deleting_it_is_refused_while_attached(
    runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID
) -> None:
    medium_id = upload(runtime)
    configuration_id = configure(runtime, service_id, iso="alpine.iso")
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="a").value.id
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed"
    vm_id = deployment.machines[0]["vm_id"]
    assert vcenter.vm_isos(vm_id) == [runtime.app.medium(medium_id).datastore_path]
    with pytest.raises(ConflictError, match=r"configuration 'web'.*machine 'web1'") as refused:
        runtime.app.delete_medium(medium_id, [configuration_id], [deployment_id], actor="alice")
    assert f"deployment {deployment_id}" in refused.value.message


def test_a_detached_medium_is_deleted_with_its_file_and_its_name_is_free_again(
    runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID
) -> None:
    medium_id = upload(runtime)
    configuration_id = configure(runtime, service_id, iso="alpine.iso")
    runtime.app.change_machine(configuration_id, "web1", machine("web1"), actor="a")
    runtime.app.delete_medium(medium_id, [configuration_id], [], actor="alice", reason="superseded")
    assert runtime.app.medium(medium_id).deleted
    assert vcenter.search_datastore(DC, DS, "stagekeeper-media", "*.iso") == []
    assert runtime.app.medium_named("alpine.iso") is None
    upload(runtime)  # the name is free


def test_a_deploy_of_an_older_version_attaching_a_deleted_iso_is_refused(runtime: Runtime, service_id: UUID) -> None:
    medium_id = upload(runtime)
    configuration_id = configure(runtime, service_id, iso="alpine.iso")
    runtime.app.change_machine(configuration_id, "web1", machine("web1"), actor="a")
    runtime.app.delete_medium(medium_id, [configuration_id], [], actor="alice")
    with pytest.raises(ConflictError, match="no longer has"):
        runtime.app.deploy(configuration_id, "int", actor="a", configuration_version=1)


def test_an_iso_missing_on_the_datastore_fails_the_deployment_before_any_clone(
    runtime: Runtime, vcenter: SimulatedVCenter, service_id: UUID
) -> None:
    medium = runtime.app.medium(upload(runtime))
    configuration_id = configure(runtime, service_id, iso="alpine.iso")
    vcenter.delete_file(DC, DS, medium.path)  # removed behind Stagekeeper's back
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="a").value.id
    runtime.catch_up()
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "failed"
    assert medium.datastore_path in (deployment.failure or "")
    assert vcenter.find_vms(deployment_id) == []


def test_a_template_with_linked_clones_stays_in_the_catalogue_until_they_are_undeployed(
    runtime: Runtime, service_id: UUID
) -> None:
    configuration_id = configure(runtime, service_id)  # web1: a linked clone of tpl-ubuntu-2404
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="a").value.id
    runtime.catch_up()
    dependants = runtime.app.template_dependants("tpl-ubuntu-2404", [deployment_id])
    assert [c.key for c in dependants.children] == [str(deployment_id)]
    with pytest.raises(ConflictError, match=f"web in int \\({deployment_id}\\)"):
        runtime.app.remove_template("tpl-ubuntu-2404", [deployment_id], actor="admin")
    runtime.app.undeploy(deployment_id, actor="a")
    runtime.catch_up()
    removed = runtime.app.remove_template("tpl-ubuntu-2404", [deployment_id], actor="admin", reason="retired OS")
    assert removed.value["name"] == "tpl-ubuntu-2404"
    assert runtime.app.catalogue().get("tpl-ubuntu-2404") is None
    with pytest.raises(ValidationError, match="not in the template catalogue"):
        configure(runtime, service_id)
