"""Audit lines of drift and verification events (merged into projections/summaries.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Data = dict[str, Any]


def _value(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _results(d: Data) -> str:
    failed = [r for r in d["results"] if not r["ok"]]
    return "; ".join(f"{r['check']} {r.get('machine') or ''} {r['detail']}".replace("  ", " ") for r in failed)


def _verification_setting(value: Data | None) -> str:
    if not value:
        return "none"
    kinds = ", ".join(
        c["kind"]
        + (f" {c['port']}" if "port" in c else "")
        + (f"{c['path']} -> {c['expect_status']}" if "path" in c else "")
        for c in value["checks"]
    )
    return f"{kinds} within {value['deadline_seconds']}s" + (", rollback on failure" if value["rollback"] else "")


SUMMARIES: dict[str, Callable[[Data], str]] = {
    "Service.StageVerificationChanged": lambda d: (
        f"verification of stage '{d['stage']}': {_verification_setting(d['before'])} -> "
        f"{_verification_setting(d['verification'])}"
    ),
    "Deployment.DriftDetected": lambda d: (
        f"drift on machine '{d['machine']}': {d['field']} is {_value(d['actual'])} in vCenter, "
        f"{_value(d['expected'])} in the history"
    ),
    "Deployment.DriftResolved": lambda d: f"drift on machine '{d['machine']}' {d['field']} gone: vCenter agrees again",
    "Deployment.DriftAdopted": lambda d: (
        f"drift on machine '{d['machine']}' adopted: {d['field']} is now {_value(d['value'])} "
        f"(configuration version {d['configuration_version']})"
    ),
    "Deployment.DriftRevertRequested": lambda d: (
        f"revert of machine '{d['machine']}' {d['field']} to {_value(d['expected'])} requested"
    ),
    "Deployment.DriftReverted": lambda d: (
        f"revert of machine '{d['machine']}' {d['field']} failed: {d['reason']}"
        if d["failed"]
        else f"machine '{d['machine']}' {d['field']} put back as the history says"
    ),
    "Deployment.VerificationStarted": lambda d: (
        f"verification after {d['after']} started: {len(d['checks'])} check(s) until {d['deadline']}"
        + (", rollback on failure" if d["rollback"] else "")
    ),
    "Deployment.VerificationPassed": lambda d: f"verification passed ({len(d['results'])} result(s))",
    "Deployment.VerificationFailed": lambda d: (
        f"verification failed: {_results(d)}" + (f"; rolled back ({d['rollback']})" if d.get("rollback") else "")
    ),
}
