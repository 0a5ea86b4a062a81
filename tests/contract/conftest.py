"""The application contract runs on every persistence: memory (POPO), SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from tests.support import postgres_schema, runtime_for

PERSISTENCES = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=PERSISTENCES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/stagekeeper.db"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def vcenter() -> SimulatedVCenter:
    return SimulatedVCenter()


@pytest.fixture
def runtime(database_url: str, vcenter: SimulatedVCenter) -> Iterator[Runtime]:
    runtime = runtime_for(database_url, vcenter=vcenter)
    runtime.app.import_templates(None, True, actor="admin")
    yield runtime
    runtime.close()
