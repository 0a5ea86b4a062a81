"""Fixtures shared by every tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.slapd_harness import Slapd
from scripts.slapd_harness import start as start_slapd
from scripts.vcsim_harness import Vcsim
from scripts.vcsim_harness import start as start_vcsim
from tests.support import postgres_schema


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema (the real server at 127.0.0.1:5432)."""
    with postgres_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/stagekeeper.db"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Slow tiers are marked so a developer can run `-m "not slow"`; CI runs them all.
    for item in items:
        path = str(item.path)
        if "/tests/integration/" in path or "/tests/e2e/" in path:
            item.add_marker(pytest.mark.slow)
        if "postgres" in item.name.lower() or "/tests/integration/" in path:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def vcsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vcsim]:
    """One vcsim for the session (built and started by scripts/vcsim.sh), seeded with templates."""
    sim = start_vcsim(tmp_path_factory.mktemp("vcsim") / "vcsim.log")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One OpenLDAP slapd for the session (scripts/slapd.sh), with the test directory loaded."""
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()
