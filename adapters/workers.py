"""Background threads that keep followers caught up: projections, and the process manager.

Two threads, so a long vCenter job never delays the read models. The process manager only
runs in the process holding its lock (PostgreSQL advisory lock / SQLite file lock); other
processes stand by and take over when the holder dies. A follower error is logged with its
traceback, kept for /healthz, and the follower retries with backoff: the event is not skipped.

A leader proves it still holds its lock before each event it acts on and before each vCenter
call (`Leadership.verify`): a lock connection that dropped means a standby may already lead,
so the former leader stops at once and stands by again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from projections.follower import Follower

log = logging.getLogger("stagekeeper.workers")

# A follower thread's debounce grows by its base for every this many events of the pass before.
DEBOUNCE_EVENTS = 2


class LeadershipLostError(Exception):
    """This process can no longer prove it holds the process manager's lock: it must not act.

    Deliberately not an InfrastructureError: the process manager must not record it as a failed
    step (the new leader carries on with the same event)."""


class Leadership:
    """Whether this process may act as the single process manager.

    Until `try_lead` is first called (tests and CLI tools driving followers by hand) nothing is
    checked; once a thread competes for the lock, acting requires holding it."""

    def __init__(self, acquire: Callable[[], bool], holds: Callable[[], bool]) -> None:
        self._acquire = acquire
        self._holds = holds
        self._state = "idle"  # "idle" | "standby" | "leading"
        self._standby_since = time.monotonic()

    @property
    def leader(self) -> bool:
        return self._state == "leading"

    def waiting_seconds(self) -> float | None:
        """How long this process has stood by for the lock (None while it leads or never tried)."""
        return time.monotonic() - self._standby_since if self._state == "standby" else None

    def try_lead(self) -> bool:
        if self._state == "leading":
            return True
        if self._state == "idle":
            self._standby(since_now=True)
        if self._acquire():
            self._state = "leading"
            log.info("this process now leads the process manager")
        return self._state == "leading"

    def verify(self) -> None:
        """Raise LeadershipLostError unless this process may act now."""
        if self._state == "idle":
            return
        if self._state == "leading" and self._holds():
            return
        if self._state == "leading":
            log.warning("lost the process manager's lock; standing by")
            self._standby(since_now=True)
        raise LeadershipLostError("this process no longer holds the process manager's lock")

    def _standby(self, since_now: bool) -> None:
        self._state = "standby"
        if since_now:
            self._standby_since = time.monotonic()


def leader_only(driver: Any, leadership: Leadership) -> Any:
    """`driver` whose every method first checks `leadership`: no vCenter call from a former leader,
    also between the steps of a long job."""
    return _LeaderOnly(driver, leadership)


class _LeaderOnly:
    def __init__(self, driver: Any, leadership: Leadership) -> None:
        self._driver = driver
        self._leadership = leadership

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._driver, name)
        if not callable(attribute):
            return attribute

        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._leadership.verify()
            return attribute(*args, **kwargs)

        return guarded


class FollowerThread:
    """Runs its followers when woken (or every `interval` seconds).

    `debounce`: after a wake, wait this long first, so the events of a few more commits are read
    and applied with these (one read, one transaction and one tracking write for them all). With
    `max_debounce` above it, the wait grows with the pass before: `debounce` for every
    `DEBOUNCE_EVENTS` events that pass processed, up to `max_debounce`. A lone command (one event a
    pass) waits `debounce`; a steady stream of them is applied in larger, fewer batches, whose
    per-batch reads and writes cost the process less for each event. `hurry()` (a reader waiting
    for a position) skips the wait.
    """

    def __init__(
        self,
        name: str,
        followers: Sequence[Follower],
        interval: float,
        leadership: Leadership | None = None,
        debounce: float = 0.0,
        max_debounce: float | None = None,
    ) -> None:
        self.debounce = debounce
        self.max_debounce = debounce if max_debounce is None else max(debounce, max_debounce)
        self.name = name
        self.followers = list(followers)
        self.interval = interval
        self.leadership = leadership
        self._wake = threading.Event()
        self._hurry = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sk-{name}", daemon=True)
        self.errors: dict[str, str] = {}

    @property
    def leader(self) -> bool:
        return self.leadership is None or self.leadership.leader

    def start(self) -> None:
        self._thread.start()

    def wake(self, *_: object) -> None:
        self._wake.set()

    def hurry(self, *_: object) -> None:
        """Wake without the debounce (somebody waits for the followers to reach a position)."""
        self._hurry.set()
        self._wake.set()

    def delay(self, processed: int) -> float:
        """The debounce after a pass that processed `processed` events."""
        return min(self.max_debounce, max(self.debounce, self.debounce * processed / DEBOUNCE_EVENTS))

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _may_act(self) -> bool:
        if self.leadership is None:
            return True
        try:
            if not self.leadership.try_lead():
                return False
            self.leadership.verify()  # a leader idle since its last event may have lost the lock
            self.errors.pop("leadership", None)
            return True
        except LeadershipLostError:
            return False
        except Exception as error:
            # The database is unreachable: stand by (and say so) until it answers again.
            self.errors["leadership"] = f"{type(error).__name__}: {error}"
            log.exception("could not check the %s lock", self.name)
            return False

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            failed = False
            processed = 0
            if self._may_act():
                for follower in self.followers:
                    if self._stop.is_set():
                        return
                    try:
                        processed += follower.catch_up() or 0
                        self.errors.pop(follower.name, None)
                    except LeadershipLostError:
                        break  # not a failure of the event: the new leader handles it
                    except Exception as error:
                        failed = True
                        self.errors[follower.name] = f"{type(error).__name__}: {error}"
                        log.exception("follower %s failed; retrying in %.1fs", follower.name, backoff)
            failed = failed or "leadership" in self.errors
            if failed:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = self.interval
            if self._wake.wait(self.interval) and self.debounce and not self._hurry.is_set():
                self._hurry.wait(self.delay(processed))
            self._wake.clear()
            self._hurry.clear()
