"""The console port as the console pages use it: tickets, screenshots and power states of VMs.

The vCenter drivers grow `console_ticket`, `screenshot` and `power_state`; a driver without
them simply shows no console tiles.
"""

from __future__ import annotations

from typing import Any

from adapters.runtime import Runtime


def console_port(runtime: Runtime) -> Any:
    vcenter = runtime.vcenter
    needed = ("console_ticket", "screenshot", "power_state")
    return vcenter if all(hasattr(vcenter, name) for name in needed) else None


def power_states(runtime: Runtime, machines: list[dict[str, Any]]) -> dict[str, str]:
    port = console_port(runtime)
    if port is None:
        return {}
    return {m["name"]: str(port.power_state(m["vm_id"])) for m in machines if m.get("vm_id")}
