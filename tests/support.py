"""Test helpers shared by every tier: databases, clocks, runtimes and ready-made payloads."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.simulated import SimulatedVCenter
from domain.ports import VCenterDriver

POSTGRES_URL = os.environ.get("STAGEKEEPER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
POSTGRES_CONNINFO = os.environ.get(
    "STAGEKEEPER_TEST_POSTGRES_CONNINFO", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
ROOT_POOL = "/DC0/host/DC0_C0/Resources"


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A throwaway schema in the test database; yields a STAGEKEEPER_DATABASE_URL pointing at it."""
    name = f"sk_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{POSTGRES_URL}?schema={name}"
    finally:
        with psycopg.connect(POSTGRES_CONNINFO, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def settings_for(url: str, **changes: Any) -> Settings:
    return Settings(database_url=url, admin_password="secret-pw", poll_seconds=0.05, **changes)


def runtime_for(url: str, vcenter: VCenterDriver | None = None, **changes: Any) -> Runtime:
    return Runtime(settings_for(url, **changes), vcenter=vcenter or SimulatedVCenter(), clock=FixedClock())


def stages(*names: str, restricted: tuple[str, ...] = (), pools: str = "") -> list[dict[str, Any]]:
    """Stages on pools `<ROOT_POOL>/<pools><name>-pool` (a resource pool serves one service only)."""
    return [{"name": n, "resource_pool": f"{ROOT_POOL}/{pools}{n}-pool", "restricted": n in restricted} for n in names]


def machine(name: str, template: str = "tpl-ubuntu-2404", os_family: str = "linux", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "template": template,
        "cpus": 2,
        "memory_mib": 2048,
        "clone_mode": "linked",
        "nics": [{"network": "front"}],
        "customization": {"os": os_family, "hostname": name, "ip_mode": "static-pool"},
        **extra,
    }


THREE_TIER = [
    machine("web1"),
    machine("web2"),
    machine("app1"),
    machine("db1", template="tpl-windows-2022", os_family="windows"),
]
