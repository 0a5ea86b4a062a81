"""The README's curl walk-through, run as written against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import AUTH, Server

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough(start: str = "API=") -> str:
    text = README.read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    [block] = [str(b) for b in blocks if b.startswith(start)]
    return block


def test_the_readme_walkthrough_runs_as_written(sqlite_server: Server, tmp_path: Path) -> None:
    script = walkthrough().replace("http://127.0.0.1:8080", sqlite_server.url)
    # Each step prints a JSON document; print a separator so they can be told apart.
    script = "set -euo pipefail\n" + script.replace("\ncurl ", "\necho; curl ")
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env={**os.environ, "PW": AUTH[1]}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert '"imported"' in output
    assert '"stage":"test"' in output  # the list after the promotion
    assert '"version":1' in output  # the configuration at version 1
    assert '"event_type"' in output  # the audit page
    assert "position,at,actor" in (tmp_path / "payroll-audit.csv").read_text()
    assert '"code":"internal"' not in output
    assert "Internal Server Error" not in output


def test_the_readme_client_walkthrough_runs_as_written(sqlite_server: Server, tmp_path: Path) -> None:
    """The curl walk-through first (it makes the service), then the client's, as written."""
    curl = walkthrough().replace("http://127.0.0.1:8080", sqlite_server.url)
    client = walkthrough("source .venv/bin/activate").replace("http://127.0.0.1:8080", sqlite_server.url)
    # The block activates the checkout's virtualenv; the test runs it in a scratch directory.
    client = client.replace("source .venv/bin/activate", f"source {Path(sys.executable).parent}/activate", 1)
    repository = str(README.parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STAGEKEEPER_")},
        "PW": AUTH[1],
        "STAGEKEEPER_CONFIG_DIR": str(tmp_path / "config"),
        # The `stagekeeper` of this checkout's virtualenv, running this checkout's code.
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": repository,
    }
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + curl + "\n" + client], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    output = result.stdout
    assert "logged in to" in output
    assert "web1: " in output
    assert "is deployed" in output
    client_part = output[output.index("logged in to") :]
    assert "QA passed" in client_part  # the audit query shows the promotion's reason
    assert "position,at,actor" in (tmp_path / "payroll-audit-cli.csv").read_text()
