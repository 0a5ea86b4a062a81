"""Pools the runs of scripts/bench/archive_compare.sh's output folder: min / median / max of each
figure for the old and the new checkout, and the load averages seen.

Usage: .venv/bin/python -m scripts.bench.archive_pool OUT
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main() -> None:
    out = Path(sys.argv[1])
    for side in ("old", "new"):
        runs: list[dict[str, float]] = []
        for path in sorted(out.glob(f"{side}-*.json")):
            text = path.read_text()
            if not text.strip():
                print(f"{path.name}: no result ({(out / path.name.replace('.json', '.err')).read_text()[-300:]})")
                continue
            runs += json.loads(text)["archive_restore"]["each_run"]
        loads = [line.split("load average:")[1].strip() for p in sorted(out.glob(f"{side}-*.load"))
                 for line in p.read_text().splitlines()]  # fmt: skip
        print(f"{side}: {len(runs)} runs; load averages {' | '.join(loads)}")
        keys = ("archive_s", "restore_s", "plain_small_by_http_s", "ratio_http", "plain_parallel_s", "ratio",
                "archive_cpu_s", "restore_cpu_s")  # fmt: skip
        for key in keys:
            values = [r[key] for r in runs if key in r]
            if values:
                print(f"  {key:24} {min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}")


if __name__ == "__main__":
    main()
