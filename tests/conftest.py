"""Fixtures shared by every tier."""

from __future__ import annotations

import logging
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


@pytest.fixture(autouse=True)
def root_logging_restored() -> Iterator[None]:
    """The command-line client replaces the root logger's handlers with one on standard error, which
    under pytest is a capture file closed when the test ends: a worker thread of a later test logging
    through it would print "Logging error". Every test takes away the stream handlers it added."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    # Only plain stream handlers the test added go (pytest swaps its own capture handlers per phase).
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler and handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


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
