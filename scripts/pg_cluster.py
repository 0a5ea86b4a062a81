"""A throwaway PostgreSQL cluster of the test suite's own, to take down and restart at will.

initdb and pg_ctl (from /usr/lib/postgresql/<newest>/bin) run as the `postgres` OS user when the
caller is root (PostgreSQL refuses to run as root), into a temporary directory, on a free port,
listening on 127.0.0.1 with trust authentication. `stop()` removes everything.
Usage: with cluster() as pg: ... pg.url ... pg.restart_immediate() ...
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

OS_USER = "postgres"


def bin_dir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return versions[-1].parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *command] if os.geteuid() == 0 else command


@dataclass
class Cluster:
    root: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _ctl(self, *args: str) -> None:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), *args]
        subprocess.run(_as_owner(command), check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
        self._ctl("-w", "-o", options, "start")
        self.wait_ready()

    def stop_immediate(self) -> None:
        """Kill the server without a checkpoint, as a crash would (recovery on the next start)."""
        self._ctl("-m", "immediate", "-w", "stop")

    def restart_immediate(self, down_seconds: float = 0.0) -> None:
        self.stop_immediate()
        time.sleep(down_seconds)
        self.start()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.conninfo, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("-m", "immediate", "-w", "stop")


@contextmanager
def cluster() -> Iterator[Cluster]:
    """A new cluster, started; stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="sk-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(root, OS_USER)
        found = Cluster(root=root, port=free_port(), bin=bin_dir())
        initdb = [str(found.bin / "initdb"), "-D", str(found.data), "-U", "postgres", "-A", "trust", "--no-sync"]
        subprocess.run(_as_owner(initdb), check=True, capture_output=True, timeout=120)
        found.start()
        try:
            yield found
        finally:
            found.stop()
    finally:
        shutil.rmtree(root)
