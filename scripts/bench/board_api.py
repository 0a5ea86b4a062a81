"""GET /api/v1/board on a kept scale store (scripts/bench/scale.py --keep), this checkout's server
against another checkout's (`--baseline-tree`, e.g. the main branch before a change), both serving
the same store, requests alternating between them round by round; GET /healthz of this checkout's
server is timed in the same rounds. Prints p50/p99 and min/median/max of each and the ratios.

Goal (issue 15): the board's first page p99 < 50 ms at 1,000,000 events, 50,000 deployments.
Usage: .venv/bin/python -m scripts.bench.board_api --schema NAME [--baseline-tree /work/main]
       [--rounds 300] [--query 'limit=50']
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from scripts.bench.common import PASSWORD, URL, percentile, served, summary


def spread(latencies: list[float]) -> str:
    return (
        f"min {min(latencies) * 1000:.2f} / median {statistics.median(latencies) * 1000:.2f} / "
        f"max {max(latencies) * 1000:.2f} ms"
    )


def timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    client.get(path).raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", required=True, help="a store kept by scripts/bench/scale.py --keep")
    parser.add_argument("--baseline-tree", help="the checkout whose server is the baseline (none: healthz only)")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--query", default="", help="query string of the board request")
    args = parser.parse_args()
    url = f"{URL}?schema={args.schema}"
    env = {"STAGEKEEPER_SERVE_WORKERS": "false"}
    path = "/api/v1/board" + (f"?{args.query}" if args.query else "")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        bases = {"this": stack.enter_context(served(url, Path(tmp) / "this.log", **env))}
        if args.baseline_tree:
            bases["baseline"] = stack.enter_context(served(url, Path(tmp) / "base.log", args.baseline_tree, **env))
        clients = {
            name: stack.enter_context(httpx.Client(base_url=base, auth=("admin", PASSWORD), timeout=120))
            for name, base in bases.items()
        }
        for client in clients.values():
            for _ in range(3):
                timed(client, path)
        first = clients["this"].get(path).json()
        listed = sum(len(st["deployments"]) for s in first["services"] for st in s["stages"])
        print(f"{path}: {len(first['services'])} services, {listed} deployments listed on the first page")
        if "baseline" in clients:
            old = clients["baseline"].get(path).json()
            old_listed = sum(len(st["deployments"]) for s in old["services"] for st in s["stages"])
            print(f"baseline server: {len(old['services'])} services, {old_listed} deployments listed")
        times: dict[str, list[float]] = {"healthz": [], **{name: [] for name in clients}}
        for n in range(args.rounds):
            order = list(clients) if n % 2 == 0 else list(reversed(clients))
            times["healthz"].append(timed(clients["this"], "/healthz"))
            for name in order:
                times[name].append(timed(clients[name], path))
    for name, latencies in times.items():
        label = "GET /healthz (this server)" if name == "healthz" else f"GET {path} ({name} server)"
        print(f"{label}: {summary(latencies)}; {spread(latencies)}")
    this = times["this"]
    print(f"this server's board p99 = {percentile(this, 0.99) / percentile(times['healthz'], 0.99):.1f}x healthz p99")
    if "baseline" in times:
        base = times["baseline"]
        p50 = percentile(this, 0.5) / percentile(base, 0.5)
        p99 = percentile(this, 0.99) / percentile(base, 0.99)
        print(f"this / baseline: p50 {p50:.2f}x, p99 {p99:.2f}x")


if __name__ == "__main__":
    main()
