"""Verification after a promote, copy, swap or upgrade: the checks a stage names, and their rules.

A stage's `verification` setting: {"checks": [...], "deadline_seconds": N, "rollback": bool}, each
check one of
  {"kind": "http", "port": 80, "path": "/", "expect_status": 200}  an HTTP GET of every machine
  {"kind": "tcp", "port": 22}                                      a TCP connect to every machine
  {"kind": "tools"}                                                VMware Tools running and a guest IP
Machines are reached at their external address (a fenced deployment's NAT) or else their IP.
The process manager runs every check once when the command completes, then again on the drift
worker's clock until all pass or the deadline passes (then VerificationFailed, and a rollback when
the stage says so). No I/O here: probes go through the `Prober` port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from domain.errors import ValidationError
from domain.text import check_text

KINDS = ("http", "tcp", "tools")
MAX_CHECKS = 10
MAX_PATH = 512
MIN_DEADLINE, MAX_DEADLINE = 5, 3600
PROBE_TIMEOUT_SECONDS = 2.0
# What a deployment is verified after (the event that completes each command).
AFTER = ("promote", "copy", "swap", "upgrade")


class Prober(Protocol):
    """Reaching a machine from Stagekeeper (adapters/probes.py)."""

    def http_status(self, url: str, timeout_seconds: float) -> int:
        """The status of a GET of `url`; raise OSError when there is no answer."""
        ...

    def tcp_open(self, host: str, port: int, timeout_seconds: float) -> bool:
        """Whether a TCP connection to host:port is accepted."""
        ...


@dataclass(frozen=True)
class Target:
    machine: str
    address: str | None  # None: no address known (a DHCP machine before its tools report one)
    vm_id: str | None


def _int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{field} must be an integer from {low} to {high}", field=field)
    return value


def parse_check(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(f"{field} must be an object with a kind", field=field)
    kind = value.get("kind")
    if kind not in KINDS:
        raise ValidationError(f"{field}.kind must be one of {', '.join(KINDS)}", field=f"{field}.kind")
    allowed = {"http": {"kind", "port", "path", "expect_status"}, "tcp": {"kind", "port"}, "tools": {"kind"}}[kind]
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValidationError(f"{field}: unknown field(s) for a {kind} check: {', '.join(unknown)}",
                              field=f"{field}.{unknown[0]}")  # fmt: skip
    if kind == "tools":
        return {"kind": "tools"}
    port = _int(value.get("port", 80 if kind == "http" else None), f"{field}.port", 1, 65535)
    if kind == "tcp":
        return {"kind": "tcp", "port": port}
    path = check_text(value.get("path", "/"), f"{field}.path", max_length=MAX_PATH, required=True)
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise ValidationError(f"{field}.path must start with / and hold no spaces", field=f"{field}.path")
    status = _int(value.get("expect_status", 200), f"{field}.expect_status", 100, 599)
    return {"kind": "http", "port": port, "path": path, "expect_status": status}


def parse_verification(value: object, field: str = "verification") -> dict[str, Any] | None:
    """The stage setting (None or an empty check list: no verification)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(f"{field} must be an object with checks", field=field)
    unknown = sorted(set(value) - {"checks", "deadline_seconds", "rollback"})
    if unknown:
        raise ValidationError(f"{field}: unknown field(s): {', '.join(unknown)}", field=f"{field}.{unknown[0]}")
    raw = value.get("checks", [])
    if not isinstance(raw, list) or len(raw) > MAX_CHECKS:
        raise ValidationError(f"{field}.checks must be a list of at most {MAX_CHECKS}", field=f"{field}.checks")
    if not raw:
        return None
    checks = [parse_check(c, f"{field}.checks[{i}]") for i, c in enumerate(raw)]
    deadline = _int(value.get("deadline_seconds", 300), f"{field}.deadline_seconds", MIN_DEADLINE, MAX_DEADLINE)
    rollback = value.get("rollback", False)
    if not isinstance(rollback, bool):
        raise ValidationError(f"{field}.rollback must be true or false", field=f"{field}.rollback")
    return {"checks": checks, "deadline_seconds": deadline, "rollback": rollback}


def targets(deployment: Any) -> list[Target]:
    """Each machine with a VM, at its external address (fenced NAT) or its own IP."""
    nat = {n["machine"]: n["external_ip"] for n in ((deployment.fence or {}).get("nat") or [])}
    found = []
    for machine in deployment.machines:
        if not machine.get("vm_id"):
            continue
        ip = machine.get("ip") or (machine.get("addressing") or {}).get("ip")
        found.append(Target(machine["name"], nat.get(machine["name"], ip), machine["vm_id"]))
    return found


def run_check(check: dict[str, Any], target: Target, prober: Prober, tools: Any) -> dict[str, Any]:
    """One check against one machine: {check, machine, target, ok, detail}. `tools(vm_id)` answers
    (tools running, guest IP) for the tools check."""
    result: dict[str, Any] = {"check": check["kind"], "machine": target.machine, "target": target.address}
    if check["kind"] == "tools":
        running, guest_ip = tools(target.vm_id)
        ok = bool(running and guest_ip)
        detail = f"tools {'running' if running else 'not running'}, guest IP {guest_ip or 'none'}"
        return {**result, "ok": ok, "detail": detail}
    if target.address is None:
        return {**result, "ok": False, "detail": "no address known"}
    if check["kind"] == "tcp":
        result["target"] = f"{target.address}:{check['port']}"
        ok = prober.tcp_open(target.address, check["port"], PROBE_TIMEOUT_SECONDS)
        return {**result, "ok": ok, "detail": "port open" if ok else "connection refused or timed out"}
    url = f"http://{target.address}:{check['port']}{check['path']}"
    result["target"] = url
    try:
        status = prober.http_status(url, PROBE_TIMEOUT_SECONDS)
    except OSError as error:
        return {**result, "ok": False, "detail": f"no answer: {error}"[:300]}
    ok = status == check["expect_status"]
    return {**result, "ok": ok, "detail": f"status {status}, expected {check['expect_status']}"}
