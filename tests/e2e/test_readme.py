"""The README's curl walk-through, run as written against a real server."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.e2e.conftest import AUTH, Server

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    [block] = [str(b) for b in blocks if b.startswith("API=")]
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
