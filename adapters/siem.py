"""Audit streaming to a SIEM: every audit entry, in order, as RFC 5424 syslog over TCP (octet-counted
framing, RFC 6587; TLS optional, RFC 5425) and/or as JSON lines POSTed to a webhook.

At least once: each sink keeps its own position (sk_tracking `siem-<sink>`), moved only after a
batch was sent (syslog: written to the socket; webhook: answered 2xx); after an outage or a restart
it resends from there, so nothing is skipped (a batch in flight when the connection broke may arrive
twice: the position and the hash in every message let the SIEM drop duplicates). One process streams
each sink (a lock per sink, as for the process manager); the others stand by. `stagekeeper siem
position SINK [--set N]` reads or moves a sink's position (to resend history)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import select
import socket
import ssl
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import httpx

from projections.audit_queries import AUDIT_FIELDS
from projections.store import ReadStore, Row, set_tracking, tracking_position

log = logging.getLogger("stagekeeper.siem")
FACILITY_LOG_AUDIT = 13  # RFC 5424 facility 13, "log audit"
SEVERITY_NOTICE, SEVERITY_WARNING = 5, 4
SD_ID = "stagekeeper@32473"  # 32473: the private enterprise number RFC 5612 reserves for documentation
BATCH = 500


class Sink(Protocol):
    name: str
    # False when a send that returned may still be lost (TCP syslog has no acknowledgement).
    acknowledged: bool

    def send(self, rows: Sequence[Row]) -> None:
        """Deliver the rows in order; raise when they may not have been delivered."""
        ...

    def alive(self) -> bool:
        """Unacknowledged sinks: whether what was sent since the last check can count as delivered."""
        ...

    def close(self) -> None: ...


def _sd_value(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _token(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most `limit` characters, else "-"."""
    cleaned = "".join(c if "!" <= c <= "~" else "_" for c in value)[:limit]
    return cleaned or "-"


def syslog_message(row: Row, hostname: str, app_name: str = "stagekeeper") -> bytes:
    """One RFC 5424 message for an audit entry (without framing)."""
    refused = str(row["event_type"]).startswith("Refusal.")
    pri = FACILITY_LOG_AUDIT * 8 + (SEVERITY_WARNING if refused else SEVERITY_NOTICE)
    timestamp = str(row["at"])
    params = {
        "position": row["position"], "actor": row["actor"], "reason": row["reason"], "service": row["service_id"],
        "stage": row["stage"], "configuration": row["configuration_id"], "deployment": row["deployment_id"],
        "aggregate": row["aggregate_id"], "version": row["aggregate_version"], "hash": row["hash"],
    }  # fmt: skip
    data = " ".join(f'{k}="{_sd_value(v)}"' for k, v in params.items() if v is not None)
    header = (
        f"<{pri}>1 {timestamp} {_token(hostname, 255)} {_token(app_name, 48)} - "
        f"{_token(str(row['event_type']), 32)} [{SD_ID} {data}] "
    )
    return header.encode() + b"\xef\xbb\xbf" + str(row["summary"]).encode()


def json_line(row: Row) -> bytes:
    return json.dumps(row, default=str, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class SyslogSink:
    """RFC 5424 over TCP (or TLS), octet-counted framing; one connection, reopened after an error."""

    def __init__(
        self, host: str, port: int, tls: bool = False, ca_file: str | None = None, timeout: float = 10.0
    ) -> None:
        self.name = "syslog"
        self.acknowledged = False
        self.host, self.port, self.tls, self.ca_file, self.timeout = host, port, tls, ca_file, timeout
        self.hostname = socket.gethostname()
        self._socket: socket.socket | None = None

    def _connect(self) -> socket.socket:
        raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if not self.tls:
            return raw
        context = ssl.create_default_context(cafile=self.ca_file)
        return context.wrap_socket(raw, server_hostname=self.host)

    def send(self, rows: Sequence[Row]) -> None:
        payload = b"".join(
            f"{len(message)} ".encode() + message for message in (syslog_message(r, self.hostname) for r in rows)
        )
        try:
            if self._socket is None:
                self._socket = self._connect()
            self._socket.sendall(payload)
        except OSError:
            self.close()
            raise

    def alive(self) -> bool:
        """Whether the connection is still open: the collector sends no data, so a readable socket is
        either its close (or reset), or TLS housekeeping (session tickets), which a read consumes."""
        sock = self._socket
        if sock is None:
            return False
        try:
            readable, _, failed = select.select([sock], [], [sock], 0)
        except (OSError, ValueError):
            return False
        if failed:
            return False
        if not readable:
            return True
        try:
            sock.setblocking(False)
            data = sock.recv(4096)
        except (ssl.SSLWantReadError, BlockingIOError):
            return True  # only TLS records of its own: the connection is fine
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(self.timeout)
        return data != b""

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None


class WebhookSink:
    """JSON lines POSTed in batches (`application/x-ndjson`), signed with HMAC-SHA256 when a secret is set."""

    def __init__(self, url: str, secret: str | None = None, timeout: float = 10.0) -> None:
        self.name = "webhook"
        self.acknowledged = True
        self.url = url
        self.secret = secret
        self._http = httpx.Client(timeout=timeout)

    def send(self, rows: Sequence[Row]) -> None:
        body = b"".join(json_line(r) for r in rows)
        headers = {"Content-Type": "application/x-ndjson", "User-Agent": "stagekeeper-siem"}
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Stagekeeper-Signature"] = f"sha256={digest}"
        response = self._http.post(self.url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise OSError(f"the SIEM webhook answered {response.status_code}")

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        self._http.close()


def tracking_name(sink: str) -> str:
    return f"siem-{sink}"


def rows_after(store: ReadStore, position: int, limit: int = BATCH) -> list[Row]:
    return store.query(
        f"SELECT {AUDIT_FIELDS} FROM sk_audit WHERE position > %s ORDER BY position LIMIT %s",  # noqa: S608
        (position, limit),
    )


def position_of(store: ReadStore, sink: str) -> int:
    with store.transaction() as cursor:
        return tracking_position(cursor, tracking_name(sink))


def set_position(store: ReadStore, sink: str, position: int) -> None:
    with store.transaction() as cursor:
        set_tracking(cursor, tracking_name(sink), position)


class AuditStreamer:
    """Sends the audit log to one sink from its position on, in a thread of its own."""

    def __init__(self, store: ReadStore, sink: Sink, poll_seconds: float, max_backoff: float = 30.0) -> None:
        self.store = store
        self.sink = sink
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self.sent = 0
        self.last_error: str | None = None
        self._in_flight: int | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"siem-{sink.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self, *_: object) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.sink.close()

    def step(self) -> int:
        """Send one batch after the sink's position; returns how many entries were sent.

        An acknowledged sink's position moves once it answered. An unacknowledged one's (syslog)
        moves one step later, when the connection is seen still open after the batch: a batch
        written into a connection the collector had just closed is sent again, never skipped."""
        position = position_of(self.store, self.sink.name)
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            if not self.sink.alive():
                self.sink.close()
                # Back off before sending again (a collector closing every connection is not spun on).
                raise ConnectionError(
                    f"the collector closed the connection; entries after position {position} will be sent again"
                )
            set_position(self.store, self.sink.name, in_flight)
            position = in_flight
        rows = rows_after(self.store, position)
        if not rows:
            return 0
        self.sink.send(rows)
        last = int(rows[-1]["position"])
        if self.sink.acknowledged:
            set_position(self.store, self.sink.name, last)
        else:
            self._in_flight = last
        self.sent += len(rows)
        return len(rows)

    def flush(self) -> None:
        """Settle the last unacknowledged batch (tests, and before stopping)."""
        if self._in_flight is not None:
            self.step()

    def _run(self) -> None:
        backoff = self.poll_seconds
        lock = tracking_name(self.sink.name)
        while not self._stop.is_set():
            try:
                if not self.store.try_lock(lock):
                    self._wake.wait(max(self.poll_seconds, 1.0))
                    self._wake.clear()
                    continue
                while not self._stop.is_set() and self.step():
                    pass
                self.last_error = None
                backoff = self.poll_seconds
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
            except Exception as error:
                if self.last_error != str(error):
                    log.warning("audit stream to %s failed (%s); retrying from its position", self.sink.name, error)
                self.last_error = str(error)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
