"""Stage IP pool parsing: a /24 (the baseline), a /8 bounded by first/last, a /16 (the widest
pool allowed unbounded) and 0.0.0.0/0 (refused), in one run.

Goal (issue 8, item 2): every size answers in about the time of a /24 (ratio near 1, well
under a millisecond each), whatever the network; before, a /8 took 29 s and 0.0.0.0/0 ran out
of memory.
Usage: .venv/bin/python -m scripts.bench.pools [--rounds 2000]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from domain.addressing import parse_ip_pool
from domain.errors import ValidationError

CASES: dict[str, dict[str, Any]] = {
    "/24": {"cidr": "10.20.0.0/24", "gateway": "10.20.0.1"},
    "/16": {"cidr": "10.1.0.0/16", "gateway": "10.1.0.1"},
    "/8 bounded": {"cidr": "10.0.0.0/8", "gateway": "10.0.0.1", "first": "10.7.0.1", "last": "10.7.255.254"},
    "0.0.0.0/0 (refused)": {"cidr": "0.0.0.0/0", "gateway": "0.0.0.1"},
}


def per_call(data: dict[str, Any], rounds: int) -> tuple[float, int]:
    """Seconds per parse, and how many of the rounds were refused (all or none)."""
    refused = 0
    started = time.perf_counter()
    for _ in range(rounds):
        try:
            parse_ip_pool(data, "ip_pools[0]")
        except ValidationError:
            refused += 1
    return (time.perf_counter() - started) / rounds, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    per_call(CASES["/24"], rounds)  # warm up
    baseline, _ = per_call(CASES["/24"], rounds)
    for name, data in CASES.items():
        seconds, refused = per_call(data, rounds)
        verdict = "refused" if refused == rounds else "accepted"
        print(f"{name:22} {seconds * 1e6:8.1f} us per pool  {seconds / baseline:5.2f}x the /24  ({verdict})")


if __name__ == "__main__":
    main()
