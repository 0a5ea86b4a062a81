"""Authenticated read rate: an LDAP login on every request, a cached LDAP login, an API token,
and no authentication at all, against the same server in one run (slapd started by the harness).

Goal (issue 5): token-authenticated reads within 1.2x of unauthenticated ones.
Also the median time of the three kinds of failed login (issue 8, item 13: the same, whatever
failed): an unknown user, a wrong directory password, a wrong local admin password.
Usage: .venv/bin/python -m scripts.bench.auth [--seconds 4]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from adapters.runtime import Runtime
from adapters.settings import Settings
from api.app import create_app
from api.auth import Principal
from api.deps import get_principal
from scripts.bench.common import free_port, percentile
from scripts.slapd_harness import ADMIN_GROUP, BIND_DN, BIND_PASSWORD, GROUP_BASE, READERS, USER_BASE
from scripts.slapd_harness import start as start_slapd


def serve(app: Any) -> tuple[str, uvicorn.Server]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server


def measure(url: str, path: str, seconds: float, **kwargs: Any) -> tuple[float, float]:
    latencies = []
    with httpx.Client(base_url=url, **kwargs) as client:
        client.get(path).raise_for_status()
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            started = time.perf_counter()
            client.get(path).raise_for_status()
            latencies.append(time.perf_counter() - started)
    return len(latencies) / seconds, percentile(latencies, 0.5)


FAILED_LOGINS = {
    "unknown user": ("mallory", "some-password"),
    "wrong directory password": ("victor", "not-victor-pw"),
    "wrong local admin password": ("admin", "not-the-admin-pw"),
}


def failed_login_medians(url: str, path: str, rounds: int) -> dict[str, float]:
    """Median latency of each kind of failed login, interleaved so drift affects all alike."""
    latencies: dict[str, list[float]] = {kind: [] for kind in FAILED_LOGINS}
    with httpx.Client(base_url=url) as client:
        for _ in range(rounds):
            for kind, credentials in FAILED_LOGINS.items():
                started = time.perf_counter()
                status = client.get(path, auth=credentials).status_code
                latencies[kind].append(time.perf_counter() - started)
                assert status == 401, (kind, status)
    return {kind: percentile(values, 0.5) for kind, values in latencies.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--failed-logins", type=int, default=30, help="rounds of the three failed logins")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        slapd = start_slapd(Path(tmp))
        try:
            base = Settings(
                database_url="memory://", ldap_url=slapd.url, ldap_bind_dn=BIND_DN, ldap_bind_password=BIND_PASSWORD,
                ldap_user_base=USER_BASE, ldap_group_base=GROUP_BASE, ldap_admin_group=ADMIN_GROUP,
                admin_password="bench-admin-pw",  # the break-glass admin, for its failed logins
            )  # fmt: skip
            runtime = Runtime(base)
            runtime.ensure_admin()
            service = runtime.app.register_service(
                "payroll", "", [{"name": "int", "resource_pool": "/DC0/host/DC0_C0/Resources"}], actor="bench"
            ).value
            runtime.app.grant_role(service.id, "viewer", None, READERS, None, actor="bench")
            runtime.catch_up()
            path = f"/api/v1/services/{service.id}"
            cached_app = create_app(base, runtime=runtime, start_workers=False)
            uncached_app = create_app(base.__class__(**{**base.__dict__, "credential_cache_seconds": 0.0}),
                                      runtime=runtime, start_workers=False)  # fmt: skip
            open_app = create_app(base, runtime=runtime, start_workers=False)
            open_app.dependency_overrides[get_principal] = lambda: Principal("victor", True, "none")
            servers = [serve(a) for a in (cached_app, uncached_app, open_app)]
            (cached_url, _), (uncached_url, _), (open_url, _) = servers
            token = httpx.post(f"{cached_url}/api/v1/tokens", json={"name": "bench"}, auth=("victor", "victor-pw"))
            bearer = {"Authorization": f"Bearer {token.json()['token']}"}
            results = {
                "no authentication": measure(open_url, path, args.seconds),
                "API token (Bearer)": measure(cached_url, path, args.seconds, headers=bearer),
                "LDAP login, cached 60 s": measure(cached_url, path, args.seconds, auth=("victor", "victor-pw")),
                "LDAP login every request": measure(uncached_url, path, args.seconds, auth=("victor", "victor-pw")),
            }
            failures = failed_login_medians(uncached_url, path, args.failed_logins)
            for server in servers:
                server[1].should_exit = True
            runtime.close()
        finally:
            slapd.stop()
    for name, (rate, p50) in results.items():
        print(f"{name:28s} {rate:8.0f} requests/s   p50 {p50 * 1000:6.2f} ms")
    ratio = results["API token (Bearer)"][1] / results["no authentication"][1]
    print(f"token / unauthenticated p50 latency: {ratio:.2f}x (goal <= 1.2x)")
    for kind, median in failures.items():
        print(f"failed login: {kind:28s} p50 {median * 1000:6.2f} ms")
    spread = max(failures.values()) / min(failures.values())
    print(f"slowest / fastest failed login p50: {spread:.2f}x (goal: 1.0x, the same work)")


if __name__ == "__main__":
    main()
