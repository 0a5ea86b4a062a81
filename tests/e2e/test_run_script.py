"""The README's first command, run as a new user would: a fresh clone, `scripts/run.sh`, log in."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import free_port

REPOSITORY = Path(__file__).resolve().parents[2]
# Setup creates a virtualenv and installs the project from the (warm) pip cache.
SETUP_SECONDS = 420


def test_run_script_starts_a_fresh_clone_and_the_printed_password_logs_in(tmp_path: Path) -> None:
    clone = tmp_path / "stagekeeper"
    subprocess.run(["git", "clone", "--quiet", str(REPOSITORY), str(clone)], check=True)
    port = free_port()
    # A new user's shell: none of the test suite's STAGEKEEPER_* settings, no active virtualenv.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEKEEPER_") and k != "VIRTUAL_ENV"}
    process = subprocess.Popen(
        ["scripts/run.sh", "--port", str(port)],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # run.sh execs the server; its whole group is stopped at the end
    )
    output: list[str] = []
    assert process.stdout is not None
    stream = process.stdout
    reader = threading.Thread(target=lambda: output.extend(line.decode(errors="replace") for line in stream))
    reader.start()
    try:
        password = None
        deadline = time.monotonic() + SETUP_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"password: (\S+)", "".join(output))
            if found and f":{port}" in "".join(output):
                password = found.group(1)
                break
            time.sleep(0.5)
        assert password is not None, f"run.sh exited {process.poll()} without serving:\n{''.join(output)}"
        url = f"http://127.0.0.1:{port}"
        me = httpx.get(f"{url}/api/v1/me", auth=("admin", password), timeout=10)
        assert me.status_code == 200, me.text
        assert me.json()["user"] == "admin"
        assert httpx.get(f"{url}/api/v1/me", auth=("admin", "not-" + password), timeout=10).status_code == 401
        # The embedded default: SQLite in the clone, the simulated driver.
        assert (clone / "stagekeeper.db").exists()
        assert httpx.get(f"{url}/healthz", timeout=10).json()["vcenter_driver"] == "simulated"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(5)
