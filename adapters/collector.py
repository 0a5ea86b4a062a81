"""The cycle collector paused while a deploy's provisioning pass runs.

A deploy's clone threads make SOAP requests and parse answers by the thousand (pyVmomi objects,
dicts, strings, in few cycles): the collector's passes over them came at random in the middle of
the clones, a full one now and then (100-300 ms on a loaded machine) where the plain script, which
allocates a fraction of that, had none (the addresses' write before the first clone, claims and
events by the hundred, had its own). Paused for the pass, from the addresses to the last machine's
write, whatever cycle the pass made is collected after it. The pause is process-wide, so it is held by
count (the last holder to leave resumes collection, as it was before the first came) and bounded
in time: after `limit` seconds collection resumes even while a holder stays (a long deploy on a
real vCenter does not keep the process from collecting for its whole length).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

LIMIT_SECONDS = 60.0

_lock = threading.Lock()
_holders = 0
_resume = False  # whether the collector was on when the first holder came (and is to be turned on again)
_timer: threading.Timer | None = None


def _expire() -> None:
    """The pause lasted its limit: collection resumes, though holders remain."""
    global _resume
    with _lock:
        if _resume:
            gc.enable()
            _resume = False


@contextmanager
def paused(limit: float = LIMIT_SECONDS) -> Iterator[None]:
    global _holders, _resume, _timer
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            gc.disable()
            _timer = threading.Timer(limit, _expire)
            _timer.daemon = True
            _timer.start()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                if _timer is not None:
                    _timer.cancel()
                    _timer = None
                if _resume:
                    gc.enable()
                    _resume = False
