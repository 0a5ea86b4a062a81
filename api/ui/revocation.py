"""Sessions ended by "Sign out", refused on the server until they would have expired anyway.

A session cookie is signed, not stored, so clearing it in the browser that signed out does not
stop a copy of it (another tab's, or a stolen one) from working until its idle deadline. Signing
out therefore records the session (by a hash of its CSRF token: random, one per sign-in, never
stored in the clear) in the read store, where every process behind the same address sees it, and
each request checks that list. Entries are dropped once their deadline has passed.
"""

from __future__ import annotations

import hashlib
import threading

from api.ui.session import Session
from projections.store import ReadStore


def session_key(session: Session) -> str:
    return hashlib.sha256(b"stagekeeper-console-signed-out\x00" + session.csrf.encode()).hexdigest()


class SignedOut:
    def __init__(self, store: ReadStore) -> None:
        self._store = store
        self._ready = False
        self._lock = threading.Lock()

    def _table(self) -> None:
        with self._lock:
            if self._ready:
                return
            with self._store.transaction() as cursor:
                cursor.execute(
                    "CREATE TABLE IF NOT EXISTS sk_console_signed_out"
                    " (session TEXT PRIMARY KEY, until DOUBLE PRECISION NOT NULL)"
                )
            self._ready = True

    def record(self, session: Session, until: float, now: float) -> None:
        """Refuse this session from now until `until` (after which its cookie is expired anyway)."""
        self._table()
        with self._store.transaction() as cursor:
            cursor.execute("DELETE FROM sk_console_signed_out WHERE until < %s", (now,))
            cursor.execute(
                "INSERT INTO sk_console_signed_out (session, until) VALUES (%s, %s) ON CONFLICT (session) DO NOTHING",
                (session_key(session), until),
            )

    def contains(self, session: Session) -> bool:
        self._table()
        found = "SELECT 1 AS found FROM sk_console_signed_out WHERE session = %s"
        rows = self._store.query(found, (session_key(session),))
        return bool(rows)
