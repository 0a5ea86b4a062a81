"""Consoles of VMs over the vSphere API: tickets, screenshots and power.

- HTML5 console: `VirtualMachine.AcquireTicket("webmks")` gives a ticket, host and port; the
  browser opens wss://host:port/ticket/<ticket>.
- VMware Remote Console: `SessionManager.AcquireCloneTicket()` gives a one-use ticket for
  vmrc://clone:<ticket>@<vcenter>/?moid=<vm>.
- Screenshot: `CreateScreenshot_Task` writes a PNG into the VM's folder and returns its datastore
  path; the PNG is read through the datastore HTTP interface (/folder/<path>?dcPath=&dsName=) with
  the session's cookie, then deleted so repeated screenshots do not pile up on the datastore.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

from pyVmomi import vim

from adapters.vcenter.pyvmomi import inventory
from adapters.vcenter.pyvmomi.session import Session
from domain.errors import VCenterFaultError
from domain.ports import POWER_ACTIONS, ConsoleTicket

DATASTORE_PATH = re.compile(r"^\[(?P<datastore>[^\]]+)\] (?P<path>.+)$")


class Consoles:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _vm(self, vm_id: str) -> Any:
        return vim.VirtualMachine(vm_id, self.session.connect()._stub)

    def ticket(self, vm_id: str) -> ConsoleTicket:
        vm = self._vm(vm_id)
        content = self.session.content
        webmks = self.session.call("acquire console ticket", lambda: vm.AcquireTicket(ticketType="webmks"))
        clone = self.session.call("acquire clone ticket", content.sessionManager.AcquireCloneTicket)
        vcenter = urlsplit(self.session.settings.url)
        host = vcenter.hostname or ""
        if vcenter.port:
            host = f"{host}:{vcenter.port}"
        # Newer vCenters give the whole console URL; otherwise it is built from host and port.
        webmks_url = (
            str(webmks.url or "")
            or f"wss://{webmks.host or vcenter.hostname}:{webmks.port or 443}/ticket/{webmks.ticket}"
        )
        return ConsoleTicket(
            vm_id=vm_id,
            webmks_url=webmks_url,
            vmrc_url=f"vmrc://clone:{clone}@{host}/?moid={vm_id}",
            expires_at=None,  # vCenter does not report it: both tickets are short-lived and single-use
        )

    def screenshot(self, vm_id: str) -> bytes:
        vm = self._vm(vm_id)
        task = self.session.call("take screenshot", vm.CreateScreenshot_Task)
        result = str(self.session.wait(task, f"screenshot of {vm_id}"))
        found = DATASTORE_PATH.match(result)
        if found is None:
            raise VCenterFaultError(f"vCenter returned an unreadable screenshot path: {result!r}")
        datacenter = self.session.call("find datacenter", lambda: inventory.datacenter_of(vm))
        data = self.session.download(
            f"/folder/{quote(found['path'])}",
            {"dcPath": datacenter.name, "dsName": found["datastore"]},
            f"download of screenshot {result}",
        )
        manager = self.session.content.fileManager
        remove = self.session.call(
            "delete screenshot", lambda: manager.DeleteDatastoreFile_Task(name=result, datacenter=datacenter)
        )
        self.session.wait(remove, f"deletion of {result}")
        return data

    def power_state(self, vm_id: str) -> str:
        vm = self._vm(vm_id)
        return str(self.session.call("read power state", lambda: vm.runtime.powerState))

    def reset(self, vm_id: str) -> None:
        vm = self._vm(vm_id)
        self.session.wait(self.session.call("reset", vm.ResetVM_Task), f"reset of {vm_id}")


def check_action(action: str) -> None:
    if action not in POWER_ACTIONS:
        raise ValueError(f"power action must be one of {', '.join(POWER_ACTIONS)}, not {action!r}")
