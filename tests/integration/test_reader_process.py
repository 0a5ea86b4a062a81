"""The reader process of a long catch-up (projections/pipeline.py) never outlives its follower:
killed with `kill -9`, the follower leaves no reader behind holding a connection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.runtime import Runtime
from tests.support import postgres_schema, runtime_for, stages

ROOT = Path(__file__).resolve().parents[2]

# A follower's process that starts a reader with batches of one event and never takes them: the
# reader fills the pipe and waits on it.
FOLLOWER = """
import sys, time
from projections.pipeline import Reader
from tests.support import runtime_for
runtime = runtime_for(sys.argv[1])
reader = Reader(runtime.projection_follower.reader, 1, 1, None, None)
print(reader._process.pid, flush=True)
time.sleep(600)
"""


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with postgres_schema() as url:
        runtime = runtime_for(url)
        yield runtime
        runtime.close()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_reader_ends_when_its_follower_is_killed(runtime: Runtime) -> None:
    service_id = runtime.app.register_service("payroll", "", stages("int"), actor="a").value.id
    for i in range(150):
        runtime.app.update_service(service_id, f"description {i} " + "x" * 500, actor="a")
    url = runtime.settings.database_url
    follower = subprocess.Popen([sys.executable, "-c", FOLLOWER, url], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        reader = int(follower.stdout.readline())
        # The reader has filled the pipe and waits for the follower to read.
        time.sleep(3)
        assert alive(reader)
        os.kill(follower.pid, signal.SIGKILL)
        follower.wait()
        deadline = time.monotonic() + 20
        while alive(reader) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(reader)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
