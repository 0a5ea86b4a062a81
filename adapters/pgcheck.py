"""A pooled PostgreSQL connection's check before use, without a round trip when the socket is quiet.

The event store's pool used psycopg_pool's `check_connection` (POSTGRES_PRE_PING): an empty query
before every checkout, two round trips per command (the aggregate's read and the insert), about a
quarter of an in-process command's time in a profile on a busy machine. A connection that sits
idle in the pool receives nothing unless the server ended it (a restart, an administrator's
terminate, an idle timeout: a FATAL message or the socket's close, both make it readable) or
sent a notice. So the full check runs only when the socket has something to read, or is gone;
otherwise the connection is handed out as it is. A peer that vanished without closing the socket
(a cut network) fails the first statement instead, as it would fail a ping: reads are retried
within the outage budget (domain/outage.py) and the broken connection is dropped by the pool.
"""

from __future__ import annotations

import select
from typing import Any

from psycopg import Connection, OperationalError
from psycopg_pool import ConnectionPool


def quiet_or_checked(conn: Connection[Any]) -> None:
    """Return if `conn` is usable; raise (the pool then discards it) if it is closed or broken."""
    if conn.closed or conn.broken:
        raise OperationalError("the connection is closed")
    try:
        quiet = not select.select([conn.fileno()], [], [], 0)[0]
    except (OSError, ValueError):
        quiet = False
    if not quiet:
        ConnectionPool.check_connection(conn)


def install_quiet_check(recorder: Any) -> bool:
    """Use `quiet_or_checked` on the pool of a PostgreSQL recorder (unwrapped); False if it has none."""
    pool = getattr(getattr(recorder, "datastore", None), "pool", None)
    if not isinstance(pool, ConnectionPool) or getattr(pool, "_check", None) is None:
        return False
    # psycopg_pool keeps the callback given as `check=` here; the library builds the pool itself.
    pool._check = quiet_or_checked
    return True
