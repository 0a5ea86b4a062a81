"""The VCenterDriver contract, run against both drivers: the simulated one, and the pyvmomi
driver against vcsim (govmomi's vSphere API simulator, started by scripts/vcsim.sh)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import uuid4

import pytest
from pyVmomi import SoapStubAdapter, vim

from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from adapters.vcenter.simulated import WEB_CONSOLE_PATH, SimulatedVCenter
from domain.errors import NotFoundError, VCenterFaultError, VCenterObjectNotFoundError
from domain.ports import CloneSpec, GuestIdentity, NicSetting, PoolStatus, VCenterDriver
from scripts.vcsim_harness import Vcsim

ROOT = "/DC0/host/DC0_C0/Resources"


@pytest.fixture(params=["simulated", "pyvmomi"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VCenterDriver]:
    if request.param == "simulated":
        driver: VCenterDriver = SimulatedVCenter(state_file=tmp_path / "inventory.json")
    else:
        sim: Vcsim = request.getfixturevalue("vcsim")
        sim.control("reset")
        driver = sim.driver()
    yield driver
    driver.close()


def spec(deployment: object, machine: str = "web1", pool: str = ROOT, template: str = "tpl-ubuntu-2404") -> CloneSpec:
    assert hasattr(deployment, "hex")
    return CloneSpec(
        vm_name=f"sk-test-{machine}-{deployment.hex[:6]}",
        template=template,
        resource_pool=pool,
        linked=True,
        cpus=2,
        memory_mib=2048,
        deployment_id=deployment,  # type: ignore[arg-type]
        machine=machine,
    )


def test_lists_templates_with_their_os_family(driver: VCenterDriver) -> None:
    templates = {t.name: t for t in driver.list_templates()}
    assert templates["tpl-windows-2022"].os_family == "windows"
    assert templates["tpl-ubuntu-2404"].os_family == "linux"


def test_pool_paths_are_classified_and_created(driver: VCenterDriver) -> None:
    assert driver.inspect_pool(ROOT) is PoolStatus.EXISTS
    assert driver.inspect_pool("/NODC/host/DC0_C0/Resources") is PoolStatus.UNKNOWN_DATACENTER
    assert driver.inspect_pool("/DC0/host/NOCLUSTER/Resources") is PoolStatus.UNKNOWN_CLUSTER
    nested = f"{ROOT}/team/app"
    assert driver.inspect_pool(nested) is PoolStatus.CREATABLE
    assert driver.ensure_pool(nested) is True
    assert driver.ensure_pool(nested) is False
    assert driver.inspect_pool(f"{ROOT}/team") is PoolStatus.EXISTS


def test_clone_customise_power_on_and_find_by_deployment(driver: VCenterDriver) -> None:
    deployment = uuid4()
    vm = driver.clone(spec(deployment))
    assert vm.deployment_id == deployment
    assert vm.machine == "web1"
    assert not vm.powered_on
    driver.set_nics(vm.vm_id, [NicSetting(network="front", mac="00:50:56:00:00:01")])
    driver.customize(vm.vm_id, GuestIdentity(hostname="web1", os_family="linux", ip="10.0.0.5", prefix_length=24))
    on = driver.power_on(vm.vm_id)
    assert on.powered_on
    assert (on.hostname, on.ip) == ("web1", "10.0.0.5")
    assert on.macs == ("00:50:56:00:00:01",)
    assert [v.vm_id for v in driver.find_vms(deployment)] == [vm.vm_id]
    assert driver.find_vms(uuid4()) == []


def test_clone_is_idempotent_per_deployment_and_machine(driver: VCenterDriver) -> None:
    deployment = uuid4()
    first = driver.clone(spec(deployment))
    again = driver.clone(spec(deployment))
    assert again.vm_id == first.vm_id
    assert len(driver.find_vms(deployment)) == 1


def test_relocate_power_off_and_destroy(driver: VCenterDriver) -> None:
    deployment = uuid4()
    target = f"{ROOT}/next"
    driver.ensure_pool(target)
    vm = driver.clone(spec(deployment))
    driver.power_on(vm.vm_id)
    driver.relocate(vm.vm_id, target)
    assert driver.find_vms(deployment)[0].resource_pool == target
    assert driver.pool_usage(target).vms == 1
    driver.power_off(vm.vm_id)
    driver.destroy(vm.vm_id)
    driver.destroy(vm.vm_id)  # already gone is fine
    assert driver.find_vms(deployment) == []


def test_missing_objects_and_faults_surface_as_vcenter_errors(driver: VCenterDriver) -> None:
    # Vendor faults become the driver's own errors where they enter: the process manager fails a
    # deployment on these, never on a domain lookup (a plain NotFoundError) that went wrong.
    with pytest.raises(VCenterObjectNotFoundError) as missing:
        driver.clone(spec(uuid4(), template="no-such-template"))
    assert isinstance(missing.value, NotFoundError)  # still a 404 wherever it reaches the API
    with pytest.raises(VCenterObjectNotFoundError):
        driver.clone(spec(uuid4(), pool=f"{ROOT}/does-not-exist"))
    with pytest.raises(VCenterObjectNotFoundError):
        driver.power_on("vm-does-not-exist")
    vm = driver.clone(spec(uuid4(), template="tpl-windows-2022"))
    with pytest.raises(VCenterFaultError):
        driver.customize(vm.vm_id, GuestIdentity(hostname="x", os_family="linux"))


def test_the_simulated_inventory_survives_a_restart(tmp_path: Path) -> None:
    deployment = uuid4()
    first = SimulatedVCenter(state_file=tmp_path / "inv.json")
    vm = first.clone(spec(deployment))
    first.close()
    second = SimulatedVCenter(state_file=tmp_path / "inv.json")
    assert [v.vm_id for v in second.find_vms(deployment)] == [vm.vm_id]
    assert second.clone(spec(uuid4(), machine="other")).vm_id != vm.vm_id


def powered_on_vm(driver: VCenterDriver, machine: str = "web1") -> str:
    vm = driver.clone(spec(uuid4(), machine=machine))
    driver.customize(vm.vm_id, GuestIdentity(hostname=machine, os_family="linux", ip="10.0.0.7", prefix_length=24))
    driver.power_on(vm.vm_id)
    return vm.vm_id


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# On vcsim, AcquireTicket and CreateScreenshot_Task are the harness's own implementations of the
# documented API (scripts/vcsim/console.go: vcsim 0.24 lacks both), so the pyvmomi code runs as
# it would against vCenter: a ticket object, a PNG written to the VM's folder and read back over
# the datastore HTTP interface.
def test_a_console_ticket_is_fresh_per_call_and_points_at_the_vm(driver: VCenterDriver) -> None:
    vm_id = powered_on_vm(driver)
    first, second = driver.console_ticket(vm_id), driver.console_ticket(vm_id)
    assert first.vm_id == vm_id
    webmks = re.fullmatch(r"wss://([^/:]+):(\d+)/ticket/(\S+)", first.webmks_url)
    assert webmks is not None, first.webmks_url
    vmrc = re.fullmatch(r"vmrc://clone:([^@]+)@([^/]+)/\?moid=(\S+)", first.vmrc_url)
    assert vmrc is not None, first.vmrc_url
    assert vmrc.group(3) == vm_id
    assert first.webmks_url != second.webmks_url
    assert first.vmrc_url != second.vmrc_url
    assert first.expires_at is None or first.expires_at > datetime.now(UTC)


def test_a_screenshot_is_a_png_of_the_running_vm(driver: VCenterDriver) -> None:
    vm_id = powered_on_vm(driver)
    width, height = png_size(driver.screenshot(vm_id))
    assert width >= 100
    assert height >= 100


def test_power_actions_are_reflected_in_the_power_state(driver: VCenterDriver) -> None:
    vm_id = powered_on_vm(driver)
    assert driver.power_state(vm_id) == "poweredOn"
    driver.power(vm_id, "reset")
    assert driver.power_state(vm_id) == "poweredOn"
    driver.power(vm_id, "off")
    assert driver.power_state(vm_id) == "poweredOff"
    driver.power(vm_id, "off")  # already off: nothing to do
    for refused in (lambda: driver.power(vm_id, "reset"), lambda: driver.screenshot(vm_id)):
        with pytest.raises(VCenterFaultError, match="InvalidPowerState"):
            refused()
    with pytest.raises(VCenterFaultError, match="InvalidPowerState"):
        driver.console_ticket(vm_id)
    driver.power(vm_id, "on")
    assert driver.power_state(vm_id) == "poweredOn"
    with pytest.raises(VCenterObjectNotFoundError):
        driver.power_state("vm-does-not-exist")


def test_a_console_ticket_opens_the_web_console_page_of_its_vm(driver: VCenterDriver) -> None:
    """`html5_url` is what "Open console" opens: the web console page with the query vCenter's
    /ui/webconsole.html takes, signed in by a one-use clone ticket of its own."""
    vm_id = powered_on_vm(driver)
    first, second = driver.console_ticket(vm_id), driver.console_ticket(vm_id)
    page = urlsplit(first.html5_url)
    query = dict(parse_qsl(page.query, strict_parsing=True))
    assert page.path.endswith("/webconsole.html"), first.html5_url
    assert query["vmId"] == vm_id
    assert query["serverGuid"]
    assert re.fullmatch(r"[^:/]+:\d+", query["host"]), query["host"]
    assert query["sessionTicket"] != dict(parse_qsl(urlsplit(second.html5_url).query))["sessionTicket"]
    assert query["sessionTicket"] not in first.vmrc_url, "clone tickets work once: each link has its own"
    if isinstance(driver, SimulatedVCenter):
        # Served by Stagekeeper itself (api/ui/simulated_console.py), which accepts the ticket.
        assert page.scheme == ""
        assert page.path == WEB_CONSOLE_PATH
        assert query["vmName"] == next(vm.name for vm in driver.all_vms() if vm.vm_id == vm_id)
        shown = driver.web_console(vm_id, query["sessionTicket"])
        assert shown is not None
        assert shown.vm_id == vm_id
        assert driver.web_console(vm_id, "cst-SIM-forged") is None
        assert driver.web_console("vm-other", query["sessionTicket"]) is None
        return
    assert isinstance(driver, PyVmomiDriver)
    content = driver.session.content
    vm = vim.VirtualMachine(vm_id, driver.session.connect()._stub)
    assert (page.path, query["vmName"]) == ("/ui/webconsole.html", vm.name)
    assert query["serverGuid"] == content.about.instanceUuid
    sdk = urlsplit(driver.session.settings.url)
    assert (page.scheme, page.netloc) == (sdk.scheme, sdk.netloc)
    # vcsim serves plain http: there is no certificate, so no thumbprint (over https it is the
    # SHA-1 of vCenter's certificate: tests/integration/test_console_thumbprint.py).
    assert "thumbprint" not in query
    # A real clone ticket: another connection can take the session over with it, once.
    assert sdk.hostname is not None
    assert sdk.port is not None
    version = driver.session.connect()._stub.version
    stub = SoapStubAdapter(host=sdk.hostname, port=-sdk.port, version=version)  # a negative port: plain http
    other = vim.ServiceInstance("ServiceInstance", stub)
    manager: Any = other.content.sessionManager
    with pytest.raises(vim.fault.NotAuthenticated):
        _ = manager.currentSession
    manager.CloneSession(cloneTicket=query["sessionTicket"])
    assert manager.currentSession.userName == driver.session.settings.user
    manager.Logout()


def test_a_machine_costs_vcenter_its_own_round_trips_only(vcsim: Vcsim, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clone to power-on, after the templates were listed (as importing them does): no inventory
    listing (templates, hosts, pools), each object looked up once, the NICs read once."""
    vcsim.control("reset")
    driver = vcsim.driver()
    try:
        driver.list_templates()
        calls: list[str] = []
        invoke = SoapStubAdapter.InvokeMethod

        def counted(self: Any, mo: Any, info: Any, args: Any, outerStub: Any = None) -> Any:  # noqa: N803
            calls.append(info.wsdlName)
            return invoke(self, mo, info, args, outerStub)

        monkeypatch.setattr(SoapStubAdapter, "InvokeMethod", counted)
        deployment = uuid4()
        per_machine: list[list[str]] = []
        for machine in ("web1", "web2"):
            calls.clear()
            vm = driver.clone(spec(deployment, machine))
            driver.set_nics(vm.vm_id, [NicSetting(network="VM Network", mac=None)])
            driver.customize(vm.vm_id, GuestIdentity(hostname=machine, os_family="linux", ip=None))
            assert driver.power_on(vm.vm_id).powered_on
            per_machine.append(list(calls))
        first, second = per_machine
        assert "CreateContainerView" not in first[: first.index("CloneVM_Task")]  # the template was known
        assert sorted(second) == sorted(
            ["FindChild", "CloneVM_Task", "SetField", "SetField", "ReconfigVM_Task",
             "RetrievePropertiesEx",  # the resize's state, with where the clone landed and its devices
             "ReconfigVM_Task", "CustomizeVM_Task", "PowerOnVM_Task",
             "RetrievePropertiesEx"]  # the power-on's state, with the VM as it left it
            + ["Fetch"] * 3  # the other tasks' state, once each: each is done when vcsim answers the call
            + ["Fetch"]  # the linked clone's snapshot of the template
        )  # fmt: skip
    finally:
        driver.close()


def test_a_clone_asks_vcenter_for_the_host_placement_chose(vcsim: Vcsim, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real vCenter clones onto the spec's host (no move after it); vcsim ignores the host, so
    what is checked is the request: the RelocateSpec names the chosen host and datastore."""
    vcsim.control("reset")
    driver = vcsim.driver()
    try:
        sent: list[Any] = []
        invoke = SoapStubAdapter.InvokeMethod

        def recorded(self: Any, mo: Any, info: Any, args: Any, outerStub: Any = None) -> Any:  # noqa: N803
            if info.wsdlName == "CloneVM_Task":
                sent.append(args[2].location)
            return invoke(self, mo, info, args, outerStub)

        monkeypatch.setattr(SoapStubAdapter, "InvokeMethod", recorded)
        chosen = CloneSpec(**{**spec(uuid4()).__dict__, "linked": False, "host": "DC0_C0_H1", "datastore": "LocalDS_0"})
        driver.clone(chosen)
        [location] = sent
        assert (location.host.name, location.datastore.name) == ("DC0_C0_H1", "LocalDS_0")
    finally:
        driver.close()


def test_a_fresh_machine_with_its_macs_costs_neither_a_name_lookup_nor_a_devices_read_back(
    vcsim: Vcsim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh clone (the first attempt's: no VM of its name can exist) is not looked up by name;
    a power-on after set_nics gave every NIC its MAC reads the VM back without its devices (the
    MACs are the ones just set): the plain script's calls plus the two tags."""
    vcsim.control("reset")
    driver = vcsim.driver()
    try:
        driver.list_templates()
        calls: list[str] = []
        read: list[list[str]] = []
        invoke = SoapStubAdapter.InvokeMethod

        def counted(self: Any, mo: Any, info: Any, args: Any, outerStub: Any = None) -> Any:  # noqa: N803
            calls.append(info.wsdlName)
            if info.wsdlName == "RetrievePropertiesEx":
                read.append([p for s in args[0] for ps in s.propSet for p in ps.pathSet])
            return invoke(self, mo, info, args, outerStub)

        deployment = uuid4()
        warm = driver.clone(CloneSpec(**{**spec(deployment, "web0").__dict__, "linked": False}))  # caches filled
        driver.set_nics(warm.vm_id, [NicSetting(network="VM Network", mac="00:50:56:00:00:06")])
        monkeypatch.setattr(SoapStubAdapter, "InvokeMethod", counted)
        vm = driver.clone(CloneSpec(**{**spec(deployment).__dict__, "linked": False, "fresh": True}))
        driver.set_nics(vm.vm_id, [NicSetting(network="VM Network", mac="00:50:56:00:00:07")])
        driver.customize(vm.vm_id, GuestIdentity(hostname="web1", os_family="linux", ip=None))
        on = driver.power_on(vm.vm_id)
        assert on.powered_on
        assert on.macs == ("00:50:56:00:00:07",)
        assert sorted(calls) == sorted(
            ["CloneVM_Task", "SetField", "SetField", "ReconfigVM_Task", "RetrievePropertiesEx",
             "ReconfigVM_Task", "CustomizeVM_Task", "PowerOnVM_Task", "RetrievePropertiesEx"]
            + ["Fetch"] * 3
        )  # fmt: skip
        resize_read, power_read = read
        assert "config.hardware.device" in resize_read  # the devices, read once: for the NICs
        assert "config.hardware.device" not in power_read
        # What the power-on left, read in full, is the same VM.
        assert driver.find_vms(deployment)[1].macs == on.macs
    finally:
        driver.close()


def test_a_known_pool_is_made_sure_of_in_one_call(vcsim: Vcsim, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once its datacenter is known, a pool that exists is found by its inventory path (one call,
    not a walk of every level); one that does not is still walked to and created."""
    vcsim.control("reset")
    driver = vcsim.driver()
    try:
        team = f"{ROOT}/team-{uuid4().hex[:6]}"
        assert driver.ensure_pool(team) is True  # walked: the datacenter is known after
        calls: list[str] = []
        invoke = SoapStubAdapter.InvokeMethod

        def counted(self: Any, mo: Any, info: Any, args: Any, outerStub: Any = None) -> Any:  # noqa: N803
            calls.append(info.wsdlName)
            return invoke(self, mo, info, args, outerStub)

        monkeypatch.setattr(SoapStubAdapter, "InvokeMethod", counted)
        assert driver.ensure_pool(team) is False
        assert calls == ["FindByInventoryPath"]
        assert driver.ensure_pool(f"{team}/app") is True
        assert "CreateResourcePool" in calls
        assert driver.inspect_pool(f"{team}/app") is PoolStatus.EXISTS
        calls.clear()
        assert driver.ensure_pool(f"{team}/app") is False
        assert calls == ["FindByInventoryPath"]
    finally:
        driver.close()
