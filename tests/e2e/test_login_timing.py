"""Failed logins do the same work whatever failed, so timing does not tell an unknown user from a
wrong password (measured by scripts/bench/auth.py; asserted here on the hashing done)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.simulated import SimulatedVCenter
from api.app import create_app
from scripts.slapd_harness import Slapd
from tests.e2e.test_permissions import settings as directory_settings
from tests.support import FixedClock

FAILURES = {
    "unknown user": ("mallory", "oscar-pw"),
    "wrong directory password": ("oscar", "not-oscar-pw"),
    "wrong local admin password": ("admin", "not-secret-pw"),
}


def scrypt_work(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Record the cost parameters of every scrypt computation from now on."""
    calls: list[tuple[Any, ...]] = []
    real: Callable[..., bytes] = hashlib.scrypt

    def counting(password: bytes, *, salt: bytes, n: int, r: int, p: int, dklen: int = 64, **rest: Any) -> bytes:
        calls.append((n, r, p, dklen))
        return real(password, salt=salt, n=n, r=r, p=p, dklen=dklen, **rest)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    return calls


def work_per_failure(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[Any, ...]]]:
    runtime = Runtime(settings, vcenter=SimulatedVCenter(), clock=FixedClock())
    try:
        runtime.ensure_admin()
        client = TestClient(create_app(settings, runtime=runtime, start_workers=False))
        calls = scrypt_work(monkeypatch)
        work = {}
        for kind, credentials in FAILURES.items():
            calls.clear()
            assert client.get("/api/v1/me", auth=credentials).status_code == 401
            work[kind] = list(calls)
        return work
    finally:
        runtime.close()


def test_every_failed_directory_login_costs_one_scrypt_verification(
    slapd: Slapd, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = work_per_failure(directory_settings(slapd), monkeypatch)
    assert all(len(calls) == 1 for calls in work.values()), work
    assert len({calls[0] for calls in work.values()}) == 1, work


def test_every_failed_login_without_a_directory_costs_one_scrypt_verification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(database_url="memory://", admin_password="secret-pw")
    work = work_per_failure(settings, monkeypatch)
    assert all(len(calls) == 1 for calls in work.values()), work
    assert len({calls[0] for calls in work.values()}) == 1, work
