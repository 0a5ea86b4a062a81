"""An ISO upload through Stagekeeper next to the same bytes PUT straight to vCenter, on vcsim.

Stagekeeper receives the body over HTTP and streams it, chunk by chunk, to vcsim's datastore file
access while hashing it, then records the medium in PostgreSQL. The baseline is a plain client
PUTting the same bytes to vcsim's /folder with a session cookie. Prints both wall times, the ratio,
and how much the server's peak RSS grew during the upload (the body is never held in memory).
Usage: .venv/bin/python -m scripts.bench.media [--mib 256] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from pyVim.connect import Disconnect, SmartConnect

from scripts.bench.common import PASSWORD, schema, served
from scripts.vcsim_harness import Vcsim, start

PIECE = 256 * 1024


def body(size: int) -> Iterator[bytes]:
    for i in range(size // PIECE):
        yield bytes([i % 256]) * PIECE


def direct_put(sim: Vcsim, size: int) -> float:
    port = int(sim.url.rsplit(":", 1)[1])
    si = SmartConnect(host="127.0.0.1", port=port, user="user", pwd="pass", protocol="http")
    try:
        cookie = si._stub.cookie
        started = time.monotonic()
        answer = httpx.put(
            f"{sim.url}/folder/bench-direct/{uuid.uuid4().hex}.iso",
            params={"dcPath": "DC0", "dsName": "LocalDS_0"}, content=body(size),
            headers={"Cookie": cookie, "Content-Length": str(size), "Content-Type": "application/octet-stream"},
            timeout=300,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        answer.raise_for_status()
        return elapsed
    finally:
        Disconnect(si)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def server_pid(port: int) -> int:
    """The `stagekeeper serve` listening on `port` (found in /proc: the bench starts it)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in args and str(port).encode() in args:
            return int(cmdline.parent.name)
    raise RuntimeError("the served Stagekeeper was not found")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    with tempfile.TemporaryDirectory() as where:
        sim = start(Path(where) / "vcsim.log")
        try:
            env = {"STAGEKEEPER_VCENTER_DRIVER": "pyvmomi", "STAGEKEEPER_VCENTER_URL": sim.sdk,
                   "STAGEKEEPER_VCENTER_USER": "user", "STAGEKEEPER_VCENTER_PASSWORD": "pass"}  # fmt: skip
            with schema() as (_, url), served(url, Path(where) / "server.log", **env) as api:
                pid = server_pid(int(api.rsplit(":", 1)[1]))
                direct, through, grown = [], [], []
                for run in range(args.runs):
                    direct.append(direct_put(sim, size))
                    before = peak_rss_mib(pid)
                    started = time.monotonic()
                    answer = httpx.post(
                        f"{api}/api/v1/media", params={"name": f"bench-{run}.iso"}, content=body(size),
                        headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
                        auth=("admin", PASSWORD), timeout=300,
                    )  # fmt: skip
                    through.append(time.monotonic() - started)
                    assert answer.status_code == 201, answer.text
                    assert answer.json()["size"] == size
                    grown.append(peak_rss_mib(pid) - before)
        finally:
            sim.stop()
    plain, ours = statistics.median(direct), statistics.median(through)
    print(f"{args.mib} MiB, median of {args.runs}: direct PUT to vcsim {plain:.2f}s "
          f"({args.mib / plain:.0f} MiB/s); through Stagekeeper {ours:.2f}s ({args.mib / ours:.0f} MiB/s); "
          f"ratio {ours / plain:.2f}x; server peak RSS grew by at most {max(grown):.1f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
