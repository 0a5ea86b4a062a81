"""The projection follower's steady state: CPU of a pass that applies a few events (issue 15).

`--events` commands (a service's description changed) are written, then one `catch_up` of the
projection follower applies them, `--passes` times; prints the follower thread's CPU per pass and
per event (the pass's fixed round trips against the events' own work). Diagnostic, no goal.
Usage: .venv/bin/python -m scripts.bench.steady_pass [--events 2] [--passes 150]
"""

from __future__ import annotations

import argparse
import time

from adapters.runtime import Runtime
from adapters.settings import Settings
from scripts.bench.common import schema

POOL = "/DC0/host/DC0_C0/Resources/steady"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2, help="events a pass applies")
    parser.add_argument("--passes", type=int, default=150)
    args = parser.parse_args()
    with schema() as (_, url):
        runtime = Runtime(Settings(database_url=url))
        try:
            service = runtime.app.register_service("steady", "", [{"name": "int", "resource_pool": POOL}], actor="b")
            follower = runtime.projection_follower
            for n in range(50):
                runtime.app.update_service(service.value.id, f"warm {n}", actor="bench")
            follower.catch_up()
            cpu = 0.0
            for p in range(args.passes):
                for n in range(args.events):
                    runtime.app.update_service(service.value.id, f"pass {p} event {n}", actor="bench")
                started = time.thread_time()
                follower.catch_up()
                cpu += time.thread_time() - started
        finally:
            runtime.close()
    print(
        f"{args.events} events a pass: projection follower CPU {cpu / args.passes * 1000:.2f} ms a pass, "
        f"{cpu / (args.passes * args.events) * 1e6:.0f} us an event ({args.passes} passes)"
    )


if __name__ == "__main__":
    main()
