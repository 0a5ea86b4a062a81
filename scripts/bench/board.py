"""The console's board at scale: 200 services x 5 stages x 1,000 deployments.

Prints the server render time of the board page (p50, p95) next to the API's /board JSON measured
in the same run (the baseline), and the time from a deployment's event to a browser showing it
on the board (Chromium, live over server-sent events).

Goals (issue 10): render p95 < 150 ms; event to browser < 1 s.
Usage: .venv/bin/python -m scripts.bench.board [--services 200] [--deployments 1000] [--sqlite]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
from playwright.sync_api import sync_playwright

from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.simulated import SimulatedVCenter
from api.app import create_app
from api.ui.boardcache import BoardCache
from scripts.bench.auth import serve
from scripts.bench.common import PASSWORD, percentile, schema

ROOT = "/DC0/host/DC0_C0/Resources"
STAGES = ("int", "test", "staging", "preprod", "prod")
MACHINE = {"name": "web1", "template": "tpl-ubuntu-2404", "cpus": 1, "memory_mib": 1024, "nics": [{"network": "front"}]}


@contextmanager
def database(sqlite: bool) -> Iterator[str]:
    if sqlite:
        with tempfile.TemporaryDirectory() as where:
            yield f"sqlite:///{where}/bench.db"
    else:
        with schema() as (_, url):
            yield url


def seed(runtime: Runtime, services: int, deployments: int) -> list[str]:
    """Services with five stages each, one configuration each, deployments spread over the stages."""
    app = runtime.app
    app.import_templates(None, True, actor="bench")
    configurations = []
    for i in range(services):
        pools = [{"name": s, "resource_pool": f"{ROOT}/svc{i:03d}-{s}"} for s in STAGES]
        service_id = app.register_service(f"service-{i:03d}", "", pools, actor="bench").value.id
        configuration = app.create_configuration(service_id, "app", "", [{"name": "front"}], [MACHINE], "bench")
        configurations.append(configuration.value.id)
    for n in range(deployments):
        app.deploy(configurations[n % services], STAGES[(n // services) % len(STAGES)], actor="bench")
    runtime.catch_up()
    return [str(c) for c in configurations]


class Changes:
    """Before each timed request: one more deployment, carried out, and seen by the read models."""

    def __init__(self, runtime: Runtime, configurations: list[str]) -> None:
        self.runtime = runtime
        self.configurations = configurations
        self.count = 0

    def __call__(self) -> None:
        from uuid import UUID

        app = self.runtime.app
        configuration = UUID(self.configurations[self.count % len(self.configurations)])
        self.count += 1
        deployment = app.deploy(configuration, STAGES[0], actor="bench").value.id
        deadline = time.monotonic() + 30
        while app.deployment(deployment).state != "deployed" or (
            self.runtime.read_models.position("deployments") < app.head()
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"deployment {deployment} was not carried out within 30 s")
            time.sleep(0.01)


class ServiceChanges:
    """Before each timed request: one service's description changed, and seen by the read models."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.service_id = runtime.read_models.services()[0]["id"]
        self.count = 0

    def __call__(self) -> None:
        from uuid import UUID

        self.count += 1
        app = self.runtime.app
        app.update_service(UUID(self.service_id), f"changed {self.count} times", actor="bench")
        self.runtime.read_models.wait("services", app.head(), 30)


def timed(client: httpx.Client, path: str, rounds: int, before: Callable[[], None] = lambda: None) -> list[float]:
    client.get(path).raise_for_status()
    latencies = []
    for _ in range(rounds):
        before()
        started = time.perf_counter()
        client.get(path).raise_for_status()
        latencies.append(time.perf_counter() - started)
    return latencies


def report(name: str, latencies: list[float]) -> float:
    p50, p95 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.95) * 1000
    print(f"  {name:<44} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    return p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    args = parser.parse_args()
    with database(args.sqlite) as url:
        settings = Settings(database_url=url, admin_password=PASSWORD, poll_seconds=0.05)
        runtime = Runtime(settings, vcenter=SimulatedVCenter())
        runtime.ensure_admin()
        started = time.perf_counter()
        configurations = seed(runtime, args.services, args.deployments)
        print(f"seeded {args.services} services x {len(STAGES)} stages, {args.deployments} deployments "
              f"in {time.perf_counter() - started:.1f} s ({'SQLite' if args.sqlite else 'PostgreSQL'})")  # fmt: skip
        app = create_app(settings, runtime=runtime)
        base, server = serve(app)
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                login = client.get("/ui/login")
                token = re.search(r'name="csrf" value="([^"]+)"', login.text)
                assert token is not None
                client.post("/ui/login", data={"username": "admin", "password": PASSWORD, "csrf": token.group(1)})
                with httpx.Client(base_url=base, auth=("admin", PASSWORD), timeout=30) as basic:
                    api = report("API GET /api/v1/board (baseline, JSON)", timed(basic, "/api/v1/board", args.rounds))
                grid = report("console /ui/ (grid, page 1 of 25 services)", timed(client, "/ui/", args.rounds))
                # Right after a change: a deployment is made and carried out (its events reach the
                # read models) before each timed request, which brings the shared board up to date.
                change = Changes(runtime, configurations)
                cold = report("console /ui/ (right after a change)", timed(client, "/ui/", args.rounds, change))
                # A service changed (its description here): the services are laid out again around
                # the deployments already known.
                services = ServiceChanges(runtime)
                report("console /ui/ (right after a service change)", timed(client, "/ui/", args.rounds, services))
                # The first request after a start reads every deployment.
                console = app.state.console
                report("console /ui/ (built from scratch)", timed(
                    client, "/ui/", args.rounds, lambda: setattr(console, "boards", BoardCache())))  # fmt: skip
                report("console /ui/board (fragment, live redraw)", timed(client, "/ui/board", args.rounds))
                report("console /ui/?view=list (50 deployments)", timed(client, "/ui/?view=list", args.rounds))
                report("console /ui/?state=deployed&page=4", timed(client, "/ui/?state=deployed&page=4", args.rounds))
                print(f"  render p95 goal < 150 ms: {grid:.1f} ms shared, {cold:.1f} ms right after a change; "
                      f"ratio to the API's board p95: {grid / api:.2f}x, {cold / api:.2f}x")  # fmt: skip
                cookie = client.cookies["sk_session"]
            latencies = browser_latency(base, cookie, runtime, configurations, args.events)
            p50, p95 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.95) * 1000
            print(f"  event -> board in Chromium ({len(latencies)} deployments): p50 {p50:.0f} ms, p95 {p95:.0f} ms "
                  f"(goal < 1000 ms)")  # fmt: skip
        finally:
            server.should_exit = True
            time.sleep(0.5)
            runtime.close()


def browser_latency(base: str, cookie: str, runtime: Runtime, configurations: list[str], events: int) -> list[float]:
    """Deploy, then time until the card is in the page the browser already shows (no reload)."""
    from uuid import UUID

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    latencies = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        context = browser.new_context()
        context.add_cookies([{"name": "sk_session", "value": cookie, "url": base}])
        page = context.new_page()
        page.goto(base + "/ui/?service=service-000")
        page.wait_for_selector("#board")
        page.wait_for_timeout(500)  # the event stream connects
        for _ in range(events):
            started = time.perf_counter()
            deployment = runtime.app.deploy(UUID(configurations[0]), "int", actor="bench").value.id
            page.wait_for_selector(f'[data-deployment="{deployment}"]', timeout=10_000)
            latencies.append(time.perf_counter() - started)
            page.wait_for_timeout(200)
        browser.close()
    return latencies


if __name__ == "__main__":
    main()
