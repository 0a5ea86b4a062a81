"""Shared pieces of the benchmarks: a throwaway PostgreSQL schema and a served Stagekeeper."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import psycopg

CONNINFO = os.environ.get("STAGEKEEPER_BENCH_CONNINFO", "host=127.0.0.1 port=5432 user=postgres dbname=test")
URL = os.environ.get("STAGEKEEPER_BENCH_URL", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "bench-password"


@contextmanager
def schema(keep: bool = False) -> Iterator[tuple[str, str]]:
    """Yields (schema name, database URL) and drops the schema afterwards (unless `keep`)."""
    name = f"sk_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name, f"{URL}?schema={name}"
    finally:
        if not keep:
            with psycopg.connect(CONNINFO, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {name} CASCADE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, seconds: float = 60.0) -> None:
    """Until something accepts connections on 127.0.0.1:`port` (RuntimeError after `seconds`, or as soon
    as `process`, the server expected there, has exited)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or (process is not None and process.poll() is not None):
                raise RuntimeError(f"nothing answers on port {port}") from None
            time.sleep(0.1)


def served(database_url: str, log: Path, cwd: str | None = None, **env: str) -> AbstractContextManager[str]:
    """A `stagekeeper serve` on a free port (the code of the checkout `cwd`, default this one)."""
    return serving(database_url, log, cwd, env=env)


@contextmanager
def serving(
    database_url: str, log: Path, cwd: str | None = None, processes: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """`served`, with `processes` > 1 as `serve --processes N`."""
    env = env or {}
    port = free_port()
    environ = {
        **os.environ,
        "STAGEKEEPER_DATABASE_URL": database_url,
        "STAGEKEEPER_ADMIN_PASSWORD": PASSWORD,
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
            + (["--processes", str(processes)] if processes > 1 else []),
            env=environ,
            cwd=cwd,
            stdout=out,
            stderr=out,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            # A machine under heavy load may take longer to import and start (seconds, default 30).
            deadline = time.monotonic() + float(os.environ.get("STAGEKEEPER_BENCH_START_SECONDS", "120"))
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"server did not start: {log.read_text()}")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def worker_beside(database_url: str, log: Path) -> Iterator[None]:
    """A `stagekeeper worker` (projections, process manager) on `database_url`, for a `serve` started
    with STAGEKEEPER_SERVE_WORKERS=false: the API and its background workers as separate processes."""
    environ = {**os.environ, "STAGEKEEPER_DATABASE_URL": database_url, "STAGEKEEPER_ADMIN_PASSWORD": PASSWORD}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env=environ, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + float(os.environ.get("STAGEKEEPER_BENCH_START_SECONDS", "120"))
            while b"worker running" not in log.read_bytes():
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"worker did not start: {log.read_text()}")
                time.sleep(0.1)
            yield
        finally:
            process.terminate()
            process.wait(10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(latencies: list[float]) -> str:
    return (
        f"p50 {percentile(latencies, 0.5) * 1000:.2f} ms, p99 {percentile(latencies, 0.99) * 1000:.2f} ms, "
        f"mean {statistics.fmean(latencies) * 1000:.2f} ms"
    )
