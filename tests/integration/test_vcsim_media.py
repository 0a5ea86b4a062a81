"""The media library against vcsim, on PostgreSQL: an ISO uploaded through vCenter's datastore
file access is found with SearchDatastore and connected to the deployed VM's CD-ROM (read back
from vCenter itself), and a template with linked clones stays in the catalogue until they go.

vcsim keeps no linked-clone disk chain (a linked clone gets a fresh empty disk, parent None): the
dependency tree comes from the event store, and vcsim cannot confirm it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from adapters.runtime import Runtime
from domain.errors import ConflictError
from scripts.vcsim_harness import Vcsim
from tests.support import machine, postgres_schema, runtime_for, stages

DC, DS = "DC0", "LocalDS_0"
ISO = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def runtime(vcsim: Vcsim) -> Iterator[Runtime]:
    vcsim.control("reset")
    with postgres_schema() as url:
        runtime = runtime_for(url, vcenter=vcsim.driver(task_timeout=5))
        runtime.app.import_templates(None, True, actor="admin")
        yield runtime
        runtime.close()


def cdrom_backings(vcsim: Vcsim, vm_id: str) -> list[tuple[str, bool, bool]]:
    """(ISO file, connected, connected at power-on) of each CD-ROM, as vCenter has the VM."""
    si = SmartConnect(host="127.0.0.1", port=int(vcsim.url.rsplit(":", 1)[1]), user="user", pwd="pass",
                      protocol="http", disableSslCertValidation=True)  # fmt: skip
    try:
        vm: Any = vim.VirtualMachine(vm_id, si._stub)
        found = []
        for device in vm.config.hardware.device:
            backing, connect = getattr(device, "backing", None), getattr(device, "connectable", None)
            if isinstance(backing, vim.vm.device.VirtualCdrom.IsoBackingInfo) and connect is not None:
                found.append((str(backing.fileName), bool(connect.connected), bool(connect.startConnected)))
        return found
    finally:
        Disconnect(si)


def deploy(runtime: Runtime, **extra: Any) -> tuple[UUID, UUID]:
    service_id = runtime.app.register_service("shop", "", stages("int"), actor="alice").value.id
    configuration_id = runtime.app.create_configuration(
        service_id, "web", "", [{"name": "front"}], [machine("web1", **extra)], actor="alice"
    ).value.id
    deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
    runtime.catch_up()
    return configuration_id, deployment_id


def test_an_uploaded_iso_is_found_on_the_datastore_and_attached_to_the_deployed_vm(
    runtime: Runtime, vcsim: Vcsim
) -> None:
    chunks = [ISO[i : i + 65536] for i in range(0, len(ISO), 65536)]
    medium = runtime.app.upload_medium("alpine.iso", len(ISO), chunks, DC, DS, 1 << 30, actor="alice").value
    assert medium.sha256 == hashlib.sha256(ISO).hexdigest()
    found = runtime.vcenter.search_datastore(DC, DS, "stagekeeper-media", "*.iso")  # type: ignore[attr-defined]
    assert [(f.path, f.size) for f in found] == [(medium.path, len(ISO))]
    configuration_id, deployment_id = deploy(runtime, iso="alpine.iso")
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "deployed", deployment.failure
    assert cdrom_backings(vcsim, deployment.machines[0]["vm_id"]) == [(medium.datastore_path, True, True)]
    with pytest.raises(ConflictError, match="machine 'web1'"):
        runtime.app.delete_medium(medium.id, [configuration_id], [deployment_id], actor="alice")


def test_an_iso_gone_from_the_datastore_fails_the_deployment_naming_the_file(runtime: Runtime) -> None:
    medium = runtime.app.upload_medium("gone.iso", 4, [b"CD01"], DC, DS, 1 << 30, actor="alice").value
    assert runtime.vcenter.delete_file(DC, DS, medium.path) is True  # type: ignore[attr-defined]
    _, deployment_id = deploy(runtime, iso="gone.iso")
    deployment = runtime.app.deployment(deployment_id)
    assert deployment.state == "failed"
    assert medium.datastore_path in (deployment.failure or "")
    assert runtime.vcenter.find_vms(deployment_id) == []


def test_deleting_a_template_with_linked_clones_is_refused_with_their_names(runtime: Runtime) -> None:
    _, deployment_id = deploy(runtime)  # web1: a linked clone of tpl-ubuntu-2404's snapshot
    assert runtime.app.deployment(deployment_id).state == "deployed"
    with pytest.raises(ConflictError, match=f"web in int \\({deployment_id}\\)"):
        runtime.app.remove_template("tpl-ubuntu-2404", [deployment_id], actor="admin")
    runtime.app.undeploy(deployment_id, actor="alice")
    runtime.catch_up()
    runtime.app.remove_template("tpl-ubuntu-2404", [deployment_id], actor="admin")
    assert runtime.app.catalogue().get("tpl-ubuntu-2404") is None
