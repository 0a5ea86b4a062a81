"""The `stagekeeper` client against a live server: login, lists, a deploy with `--wait`, exit codes.

The server is a real uvicorn on a local port (tests/e2e/live.py) with its workers running and the
simulated vCenter (each task takes a moment, so a wait has something to follow); the client runs as
its own process, exactly as a user's shell would run it."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.runtime import Runtime
from adapters.vcenter.simulated import SimulatedVCenter
from api.app import create_app
from tests.e2e.conftest import AUTH
from tests.e2e.live import serve
from tests.support import THREE_TIER, settings_for, stages

pytestmark = pytest.mark.slow


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Runtime]]:
    settings = settings_for(f"sqlite:///{tmp_path}/sk.db")
    runtime = Runtime(settings, vcenter=SimulatedVCenter(task_seconds=0.15))
    runtime.ensure_admin()
    runtime.start_workers()
    try:
        with serve(create_app(settings, runtime=runtime)) as url:
            yield url, runtime
    finally:
        runtime.close()


def cli(home: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STAGEKEEPER_")}
    environ.update({"STAGEKEEPER_CONFIG_DIR": str(home), "COLUMNS": "200", **env})
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], input=stdin, capture_output=True, text=True, env=environ, timeout=120
    )


def service_with_configuration(url: str) -> tuple[str, str]:
    with httpx.Client(base_url=url + "/api/v1", auth=AUTH, timeout=30) as http:
        assert http.post("/templates/import", json={"all": True}).status_code == 200
        service = http.post("/services", json={"name": "payroll", "stages": stages("int", "test")}).json()
        body: dict[str, Any] = {"name": "three-tier", "networks": [{"name": "front"}], "machines": THREE_TIER}
        configuration = http.post(f"/services/{service['id']}/configurations", json=body).json()
    return str(service["id"]), str(configuration["id"])


def login(url: str, home: Path) -> None:
    done = cli(home, "login", url, "--user", AUTH[0], "--password-stdin", stdin=AUTH[1] + "\n")
    assert done.returncode == 0, done.stderr
    assert "logged in" in done.stdout


def test_login_keeps_the_token_private_and_lists_read_through_it(live: tuple[str, Runtime], tmp_path: Path) -> None:
    url, _ = live
    home = tmp_path / "config"
    service_id, _ = service_with_configuration(url)
    login(url, home)
    stored = home / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert json.loads(stored.read_text())["user"] == "admin"

    listed = cli(home, "services", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert [s["id"] for s in json.loads(listed.stdout)["items"]] == [service_id]
    table = cli(home, "services", "show", "payroll")
    assert table.returncode == 0
    assert "int" in table.stdout
    assert "test" in table.stdout

    # The token is listed, and logout revokes it on the server.
    tokens = json.loads(cli(home, "tokens", "list", "-o", "json").stdout)["items"]
    assert len(tokens) == 1
    assert cli(home, "logout").returncode == 0
    assert not stored.exists()
    token = tokens[0]["id"]
    with httpx.Client(base_url=url + "/api/v1", auth=AUTH) as http:
        assert next(t for t in http.get("/tokens").json()["items"] if t["id"] == token)["revoked"]


def test_deploy_and_promote_with_wait(live: tuple[str, Runtime], tmp_path: Path) -> None:
    url, _ = live
    home = tmp_path / "config"
    service_id, configuration_id = service_with_configuration(url)
    login(url, home)

    deployed = cli(home, "deploy", configuration_id, "--stage", "int", "--reason", "first build", "--wait")
    assert deployed.returncode == 0, deployed.stderr
    # Not a terminal: one line per event, each machine named, then the outcome.
    for name in ("web1", "web2", "app1", "db1"):
        assert f"{name}: " in deployed.stdout
    assert "is deployed" in deployed.stdout
    listed = json.loads(cli(home, "deployments", "list", "--service", "payroll", "-o", "json").stdout)["items"]
    assert [(d["stage"], d["state"]) for d in listed] == [("int", "deployed")]
    deployment_id = listed[0]["id"]

    promoted = cli(home, "promote", deployment_id, "--wait", "--output", "json")
    assert promoted.returncode == 0, promoted.stderr
    last = json.loads(promoted.stdout[promoted.stdout.rindex("{\n") :])
    assert (last["id"], last["state"]) == (deployment_id, "deployed")
    shown = json.loads(cli(home, "deployments", "show", deployment_id, "-o", "json").stdout)
    assert shown["stage"] == "test"

    history = cli(home, "audit", "query", "--service", service_id, "-o", "json")
    assert history.returncode == 0
    assert any(e["reason"] == "first build" for e in json.loads(history.stdout)["items"])


def test_a_failed_deployment_exits_1(live: tuple[str, Runtime], tmp_path: Path) -> None:
    url, runtime = live
    home = tmp_path / "config"
    _, configuration_id = service_with_configuration(url)
    login(url, home)
    runtime.vcenter.inject_fault("clone", "InsufficientResourcesFault: no room", count=50)  # type: ignore[attr-defined]
    failed = cli(home, "deploy", configuration_id, "--stage", "int", "--wait")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "is failed" in failed.stdout
    assert "InsufficientResourcesFault" in failed.stdout


def test_exit_codes_for_refusal_usage_and_unreachable(live: tuple[str, Runtime], tmp_path: Path) -> None:
    url, _ = live
    home = tmp_path / "config"
    _, configuration_id = service_with_configuration(url)
    assert cli(home, "deployments", "list").returncode == 2  # not logged in
    login(url, home)
    refused = cli(home, "deploy", configuration_id, "--stage", "nowhere")
    assert refused.returncode == 3
    assert "nowhere" in refused.stderr
    assert cli(home, "deploy", configuration_id).returncode == 2  # --stage missing
    with_password = cli(home, "login", url, "--user", "admin", "--password-stdin", stdin="wrong\n")
    assert with_password.returncode == 3
    assert "401" in with_password.stderr
    closed = cli(home, "deployments", "list", STAGEKEEPER_URL="http://127.0.0.1:9", STAGEKEEPER_TOKEN="x")
    assert closed.returncode == 4
    assert "cannot reach" in closed.stderr


def test_ctrl_c_stops_waiting_not_the_deployment(live: tuple[str, Runtime], tmp_path: Path) -> None:
    url, runtime = live
    home = tmp_path / "config"
    _, configuration_id = service_with_configuration(url)
    login(url, home)
    runtime.vcenter._task_seconds = 1.0  # type: ignore[attr-defined]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STAGEKEEPER_")}
    environ["STAGEKEEPER_CONFIG_DIR"] = str(home)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "deploy", configuration_id, "--stage", "int", "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
        # A test worker may ignore SIGINT (pytest-xdist's do), and a child inherits that: a user's
        # shell gives the client the default disposition, so does this.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert waiting.stdout is not None
    first = waiting.stdout.readline()  # the deployment's id line: the command was accepted
    assert first.startswith("id")
    deployment_id = first.split()[1]
    time.sleep(0.5)
    waiting.send_signal(signal.SIGINT)
    _out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    assert "stopped waiting" in err
    assert deployment_id in err
    # The deployment goes on without the client.
    with httpx.Client(base_url=url + "/api/v1", auth=AUTH) as http:
        deadline = time.monotonic() + 60
        while http.get(f"/deployments/{deployment_id}").json()["state"] != "deployed":
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_shell_completion_script(tmp_path: Path) -> None:
    done = cli(tmp_path, _STAGEKEEPER_COMPLETE="bash_source")
    assert done.returncode == 0
    assert "_stagekeeper_completion" in done.stdout


def test_export_from_one_server_and_import_into_another(live: tuple[str, Runtime], tmp_path: Path) -> None:
    url, _ = live
    service_id, configuration_id = service_with_configuration(url)
    source_home, target_home = tmp_path / "source", tmp_path / "target"
    login(url, source_home)
    written = cli(source_home, "export", "service", "payroll", "--output", str(tmp_path / "payroll.json"))
    assert written.returncode == 0, written.stderr
    assert "chain head" in written.stdout
    kept = cli(source_home, "export", "service", "payroll", "--output", str(tmp_path / "payroll.json"))
    assert kept.returncode == 2  # an existing file is not overwritten unasked
    assert "--force" in kept.stderr
    forced = cli(source_home, "export", "service", "payroll", "--output", str(tmp_path / "payroll.json"), "--force")
    assert forced.returncode == 0, forced.stderr
    settings = settings_for(f"sqlite:///{tmp_path}/other.db")
    other = Runtime(settings, vcenter=SimulatedVCenter())
    other.ensure_admin()
    try:
        with serve(create_app(settings, runtime=other)) as other_url:
            login(other_url, target_home)
            done = cli(target_home, "import", str(tmp_path / "payroll.json"), "--reason", "new datacentre")
            assert done.returncode == 0, done.stderr
            assert f"imported service payroll ({service_id})" in done.stdout
            again = cli(target_home, "import", str(tmp_path / "payroll.json"))
            assert again.returncode == 3
            assert "409" in again.stderr
            history = cli(target_home, "history", configuration_id, "-o", "json")
            assert json.loads(history.stdout)["items"][0]["version"] == 1
            # A file altered on the way is refused, naming where.
            document = json.loads((tmp_path / "payroll.json").read_text())
            document["records"][0]["state"]["name"] = "evil"
            (tmp_path / "evil.json").write_text(json.dumps(document))
            refused = cli(target_home, "import", str(tmp_path / "evil.json"))
            assert refused.returncode == 3
            assert "records[0]" in refused.stderr
    finally:
        other.close()
