"""The pyvmomi driver's vCenter session expires (here: terminated from another connection on vcsim,
as an administrator would, or as vCenter does after its idle timeout): the driver logs in again,
once, and the call that met the expired session succeeds."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

import pytest
from pyVim.connect import Disconnect, SmartConnect

from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from domain.ports import CloneSpec
from scripts.vcsim_harness import Vcsim
from tests.support import ROOT_POOL, THREE_TIER, postgres_schema, runtime_for, stages


@pytest.fixture
def admin(vcsim: Vcsim) -> Iterator[Any]:
    """Another connection to vcsim: the administrator who terminates sessions."""
    si = SmartConnect(host="127.0.0.1", port=int(vcsim.url.rsplit(":", 1)[1]), user="user", pwd="pass",
                      protocol="http", disableSslCertValidation=True)  # fmt: skip
    yield si
    Disconnect(si)


def session_keys(admin: Any) -> set[str]:
    return {s.key for s in admin.content.sessionManager.sessionList}


def terminate_driver_session(admin: Any, driver: PyVmomiDriver) -> str:
    key = str(driver.session.connect().content.sessionManager.currentSession.key)
    admin.content.sessionManager.TerminateSession(sessionId=[key])
    assert key not in session_keys(admin)
    return key


def clone_spec(machine: str) -> CloneSpec:
    deployment = uuid4()
    return CloneSpec(
        vm_name=f"sk-relogin-{machine}-{deployment.hex[:6]}", template="tpl-ubuntu-2404", resource_pool=ROOT_POOL,
        linked=False, cpus=1, memory_mib=1024, deployment_id=deployment, machine=machine,
    )  # fmt: skip


def test_a_driver_call_after_the_session_was_terminated_logs_in_again_and_succeeds(vcsim: Vcsim, admin: Any) -> None:
    driver = vcsim.driver()
    try:
        vm = driver.clone(clone_spec("web1"))
        old = terminate_driver_session(admin, driver)
        # A method call (a task) and a property read both meet the expired session.
        on = driver.power_on(vm.vm_id)
        assert on.powered_on
        assert [v.vm_id for v in driver.find_vms(vm.deployment_id or uuid4())] == [vm.vm_id]
        now = driver.session.connect().content.sessionManager.currentSession.key
        assert now != old
        assert now in session_keys(admin)
        driver.power_off(vm.vm_id)
        driver.destroy(vm.vm_id)
    finally:
        driver.close()


def test_parallel_calls_that_all_meet_the_expired_session_log_in_once(vcsim: Vcsim, admin: Any) -> None:
    driver = vcsim.driver()
    try:
        vms = [driver.clone(clone_spec(f"m{i}")) for i in range(6)]
        terminate_driver_session(admin, driver)
        before = session_keys(admin)
        with ThreadPoolExecutor(6) as pool:
            read = list(pool.map(lambda vm: driver.find_vms(vm.deployment_id or uuid4()), vms))
        assert [[v.vm_id for v in found] for found in read] == [[vm.vm_id] for vm in vms]
        # Exactly one new session: the six threads that met NotAuthenticated shared one login.
        assert len(session_keys(admin) - before) == 1
        for vm in vms:
            driver.destroy(vm.vm_id)
    finally:
        driver.close()


def test_a_deployment_started_after_the_session_expired_completes(vcsim: Vcsim, admin: Any) -> None:
    vcsim.control("reset")
    with postgres_schema() as url:
        driver = vcsim.driver()
        runtime = runtime_for(url, vcenter=driver)
        try:
            runtime.app.import_templates(None, True, actor="admin")
            service_id = runtime.app.register_service("relogin", "", stages("int"), actor="alice").value.id
            runtime.catch_up()
            configuration_id = runtime.app.create_configuration(
                service_id, "c", "", [{"name": "front"}], THREE_TIER, actor="alice"
            ).value.id
            terminate_driver_session(admin, driver)
            deployment_id = runtime.app.deploy(configuration_id, "int", actor="alice").value.id
            runtime.catch_up()
            deployment = runtime.app.deployment(deployment_id)
            assert deployment.state == "deployed", deployment.failure
            assert len(driver.find_vms(deployment_id)) == len(THREE_TIER)
            runtime.app.undeploy(deployment_id, actor="alice")
            runtime.catch_up()
        finally:
            runtime.close()
