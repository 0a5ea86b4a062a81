"""The interpreter settings of a long-running Stagekeeper process (`serve`, `worker`).

- What start-up built lives as long as the process: it is collected once and frozen out of the
  collector's generations, so a full collection no longer walks it (one took ~100 ms in a worker
  that had imported everything, and landed in the middle of archives and deploys).
- The interval at which a thread holding the interpreter lock is asked to let another run
  (`sys.setswitchinterval`; STAGEKEEPER_SWITCH_INTERVAL_MS, default Python's own 5 ms): the process
  manager waits on vCenter tasks from up to `vcenter_parallel_tasks` threads, and a thread whose task
  finished may wait that long behind a thread recording events. On a loaded machine 1 ms made the
  deploy benchmark steadier; on a quiet one it made no difference (README, issue 15 figures).

Tests build many runtimes in one process and do not call this (a freeze there would keep their
garbage); the benchmarks that stand for a served process do.
"""

from __future__ import annotations

import gc
import sys

from adapters.settings import Settings


def settle(settings: Settings) -> None:
    """Call once, when the process has built its runtime and is about to serve."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
