"""Consoles of VMs over the vSphere API: tickets, screenshots and power.

- vCenter's web console page (what "Open console" opens): https://<vcenter>/ui/webconsole.html with
  the VM's moid and name, vCenter's instance UUID (`about.instanceUuid`) as serverGuid, host=<vcenter>:443,
  a one-use clone ticket (`SessionManager.AcquireCloneTicket`) as sessionTicket, and the SHA-1
  thumbprint of vCenter's certificate. That page signs the browser in with the clone ticket and
  opens the console itself; the parameter set is the one vSphere 6.7+ web clients use.
- HTML5 console stream: `VirtualMachine.AcquireTicket("webmks")` gives a ticket, host and port;
  a client embedding VMware's WebMKS library opens wss://host:port/ticket/<ticket>.
- VMware Remote Console: `SessionManager.AcquireCloneTicket()` gives a one-use ticket for
  vmrc://clone:<ticket>@<vcenter>/?moid=<vm>.
- Screenshot: `CreateScreenshot_Task` writes a PNG into the VM's folder and returns its datastore
  path; the PNG is read through the datastore HTTP interface (/folder/<path>?dcPath=&dsName=) with
  the session's cookie, then deleted so repeated screenshots do not pile up on the datastore.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import threading
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from pyVmomi import vim

from adapters.vcenter.pyvmomi import inventory
from adapters.vcenter.pyvmomi.session import Session
from domain.errors import VCenterFaultError
from domain.ports import POWER_ACTIONS, ConsoleTicket

DATASTORE_PATH = re.compile(r"^\[(?P<datastore>[^\]]+)\] (?P<path>.+)$")


def certificate_thumbprint(url: str, timeout: float = 10.0) -> str | None:
    """SHA-1 of the certificate the server at `url` presents (AA:BB:...), None over plain http.

    Read only, never trusted here: the SDK connection itself verifies the certificate (when
    STAGEKEEPER_VCENTER_VERIFY_TLS is on); the web console page pins what it is given."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    if not certificate:
        return None
    return ":".join(f"{byte:02X}" for byte in hashlib.sha1(certificate, usedforsecurity=False).digest())


def web_console_url(
    sdk_url: str, vm_id: str, vm_name: str, server_guid: str, session_ticket: str, thumbprint: str | None
) -> str:
    """vCenter's HTML5 web console page for one VM, signed in by `session_ticket` (a clone ticket)."""
    parts = urlsplit(sdk_url)
    host = parts.hostname or ""
    query = {
        "vmId": vm_id,
        "vmName": vm_name,
        "serverGuid": server_guid,
        "host": f"{host}:{parts.port or 443}",
        "sessionTicket": session_ticket,
    }
    if thumbprint:
        query["thumbprint"] = thumbprint
    return f"{parts.scheme}://{parts.netloc}/ui/webconsole.html?{urlencode(query, quote_via=quote)}"


class Consoles:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._thumbprint: str | None = None
        self._thumbprint_read = False
        self._lock = threading.Lock()

    def thumbprint(self) -> str | None:
        # vCenter's certificate does not change under a running connection: read it once.
        with self._lock:
            if not self._thumbprint_read:
                url, timeout = self.session.settings.url, min(30.0, self.session.settings.task_timeout)
                try:
                    self._thumbprint = certificate_thumbprint(url, timeout=timeout)
                except OSError as error:
                    raise VCenterFaultError(f"cannot read vCenter's certificate at {url}: {error}") from error
                self._thumbprint_read = True
            return self._thumbprint

    def _vm(self, vm_id: str) -> Any:
        return vim.VirtualMachine(vm_id, self.session.connect()._stub)

    def ticket(self, vm_id: str) -> ConsoleTicket:
        vm = self._vm(vm_id)
        content = self.session.content
        webmks = self.session.call("acquire console ticket", lambda: vm.AcquireTicket(ticketType="webmks"))
        clone = self.session.call("acquire clone ticket", content.sessionManager.AcquireCloneTicket)
        # Clone tickets work once: the web console page gets a ticket of its own.
        page_ticket = self.session.call("acquire clone ticket", content.sessionManager.AcquireCloneTicket)
        name = str(self.session.call("read VM name", lambda: vm.name))
        server_guid = str(self.session.call("read vCenter instance", lambda: content.about.instanceUuid))
        html5_url = web_console_url(
            self.session.settings.url, vm_id, name, server_guid, str(page_ticket), self.thumbprint()
        )
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
            expires_at=None,  # vCenter does not report it: the tickets are short-lived and single-use
            html5_url=html5_url,
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
