"""A vcsim instance for tests and benchmarks: started by scripts/vcsim.sh, seeded with templates."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from adapters.vcenter.pyvmomi.session import ConnectionSettings

ROOT = Path(__file__).resolve().parent.parent
# vcsim 0.24 only accepts the guest ids it knew then (rhel7, Windows Server 2016 = windows9Server64).
TEMPLATES = (
    ("tpl-ubuntu-2404", "DC0_H0_VM0", "ubuntu64Guest", 2, 2048),
    ("tpl-rhel-9", "DC0_H0_VM1", "rhel7_64Guest", 2, 4096),
    ("tpl-windows-2022", "DC0_H1_VM0", "windows9Server64Guest", 2, 8192),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Vcsim:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def sdk(self) -> str:
        return f"{self.url}/sdk"

    def settings(self, task_timeout: float = 30.0) -> ConnectionSettings:
        return ConnectionSettings(url=self.sdk, user="user", password="pass", task_timeout=task_timeout)

    def driver(self, task_timeout: float = 30.0) -> PyVmomiDriver:
        return PyVmomiDriver(self.settings(task_timeout))

    def control(self, action: str, **params: Any) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/_control/{action}", params=params, timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# A distributed switch (DVS0) with port groups DC0_DVPG0..2: fenced networks add theirs beside them.
DEFAULT_FLAGS = ("-pg", "3")


def start(log: Path, *flags: str) -> Vcsim:
    """Start vcsim with `flags` (default DEFAULT_FLAGS; `-ds N` adds datastores LocalDS_1...)."""
    flags = flags or DEFAULT_FLAGS
    port = free_port()
    out = log.open("wb")
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "vcsim.sh"), "run", "-l", f"127.0.0.1:{port}", *flags], stdout=out, stderr=out
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # the first run builds vcsim
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vcsim exited: {log.read_text()}")
        try:
            httpx.get(f"{url}/_control/reset", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(f"vcsim did not start: {log.read_text()}")
    sim = Vcsim(url, process)
    seed(sim)
    return sim


def seed(sim: Vcsim) -> None:
    """Turn three of vcsim's default VMs into templates (with a snapshot, for linked clones)."""
    si = SmartConnect(host="127.0.0.1", port=int(sim.url.rsplit(":", 1)[1]), user="user", pwd="pass",
                      protocol="http", disableSslCertValidation=True)  # fmt: skip
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        vms = {vm.name: vm for vm in view.view}
        view.Destroy()
        for name, source, guest, cpus, memory in TEMPLATES:
            vm = vms[source]
            if vm.runtime.powerState == "poweredOn":
                _wait(vm.PowerOffVM_Task())
            _wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(name=name, guestId=guest, numCPUs=cpus, memoryMB=memory)))
            _wait(vm.CreateSnapshot_Task(name="base", description="linked clone base", memory=False, quiesce=False))
            vm.MarkAsTemplate()
    finally:
        Disconnect(si)


def _wait(task: Any) -> None:
    while task.info.state not in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
        time.sleep(0.02)
    if task.info.state == vim.TaskInfo.State.error:
        raise RuntimeError(str(task.info.error))
