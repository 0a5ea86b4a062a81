"""The file tier against plain file copies: space for 10 archives of one configuration, and speed.

A configuration of 3 VMs cloned from one template; each VM has a 64 MiB pseudo-disk (about a third
zero blocks, a third text-like blocks, a third incompressible ones, as an OS disk with media on it),
a .vmx, an .nvram and a vmware.log. Between two archives every disk has 2% of its bytes rewritten
in a few clustered runs (files changed in place), the log grows and the .vmx changes a line.
Each archive is put into a FileTier and, for the baseline, copied file by file into a plain folder
(copy + fsync, what a datastore folder archive costs); then every archive is read back from both.
Prints logical vs stored bytes (the saving), and put/get time against the copies in the same run.
Usage: .venv/bin/python -m scripts.bench.filetier [--archives 10] [--vms 3] [--disk-mib 64]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from adapters.filetier import FileTier

MIB = 1024 * 1024
BLOCK = 4096
WORDS = [
    w.encode()
    for w in [
        "the",
        "of",
        "kernel",
        "module",
        "lib",
        "usr",
        "share",
        "bin",
        "config",
        "payroll",
        "ledger",
        "index",
        "page",
        "row",
    ]
]


def text_block(rng: random.Random, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(WORDS, k=256)) + b"\n" + rng.randbytes(16)
    return bytes(out[:size])


def extent(rng: random.Random, size: int) -> bytes:
    kind = rng.random()
    if kind < 0.34:
        return bytes(size)
    if kind < 0.67:
        return text_block(rng, size)
    return rng.randbytes(size)


def pseudo_disk(rng: random.Random, size: int) -> bytearray:
    disk = bytearray()
    while len(disk) < size:
        disk += extent(rng, min(size - len(disk), rng.choice((16, 32, 64, 128)) * BLOCK))
    return disk


def rewrite(rng: random.Random, disk: bytearray, fraction: float, runs: int = 8) -> None:
    """Rewrites `fraction` of the disk in `runs` block-aligned runs (files changed in place)."""
    run = int(len(disk) * fraction / runs) // BLOCK * BLOCK
    for _ in range(runs):
        at = rng.randrange(0, (len(disk) - run) // BLOCK) * BLOCK
        disk[at : at + run] = text_block(rng, run) if rng.random() < 0.5 else rng.randbytes(run)


class Machine:
    def __init__(self, name: str, disk: bytearray, rng: random.Random) -> None:
        self.name = name
        self.disk = disk
        self.log = bytearray(text_block(rng, 64 * 1024))
        self.nvram = bytearray(rng.randbytes(8 * 1024))
        self.generation = 0

    def files(self) -> dict[str, bytes]:
        vmx = "\n".join(
            [f'displayName = "{self.name}"', 'guestOS = "otherlinux-64"', f"generation = {self.generation}"]
        )
        return {
            f"{self.name}/{self.name}-flat.vmdk": bytes(self.disk),
            f"{self.name}/{self.name}.vmx": vmx.encode() * 40,
            f"{self.name}/{self.name}.nvram": bytes(self.nvram),
            f"{self.name}/vmware.log": bytes(self.log),
        }

    def age(self, rng: random.Random, fraction: float) -> None:
        rewrite(rng, self.disk, fraction)
        self.log += text_block(rng, 16 * 1024)
        self.nvram[rng.randrange(len(self.nvram))] ^= 1
        self.generation += 1


def write_files(folder: Path, files: dict[str, bytes]) -> list[Path]:
    paths = []
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        paths.append(path)
    return paths


def copy_durably(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, MIB)
        dst.flush()
        os.fsync(dst.fileno())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archives", type=int, default=10)
    parser.add_argument("--vms", type=int, default=3)
    parser.add_argument("--disk-mib", type=int, default=64)
    parser.add_argument("--change", type=float, default=0.02, help="fraction of each disk rewritten per archive")
    parser.add_argument("--level", type=int, default=3, help="zstandard level")
    args = parser.parse_args()

    rng = random.Random(12)
    template = pseudo_disk(rng, args.disk_mib * MIB)
    machines = []
    for index in range(1, args.vms + 1):
        disk = bytearray(template)
        rewrite(rng, disk, 0.03)  # each clone has diverged from the template a little
        machines.append(Machine(f"vm{index}", disk, rng))

    with tempfile.TemporaryDirectory(prefix="filetier-bench-") as scratch:
        root = Path(scratch)
        tier = FileTier(root / "tier", level=args.level)
        put_time = copy_time = get_time = copy_back_time = 0.0
        logical = 0
        archives = []
        first_stored = 0
        for number in range(args.archives):
            source = root / "source" / str(number)
            paths = write_files(source, {k: v for m in machines for k, v in m.files().items()})
            logical += sum(p.stat().st_size for p in paths)
            started = time.perf_counter()
            for path in paths:
                copy_durably(path, root / "plain" / str(number) / path.relative_to(source))
            copy_time += time.perf_counter() - started
            started = time.perf_counter()
            manifests = []
            for path in paths:
                with path.open("rb") as stream:
                    manifests.append(tier.put(str(path.relative_to(source)), stream))
            put_time += time.perf_counter() - started
            archives.append(manifests)
            if number == 0:
                first_stored = tier.stats().stored_bytes
            shutil.rmtree(source)
            for machine in machines:
                machine.age(rng, args.change)

        for number, manifests in enumerate(archives):
            plain = root / "plain" / str(number)
            started = time.perf_counter()
            for path in sorted(p for p in plain.rglob("*") if p.is_file()):
                copy_durably(path, root / "back-plain" / path.relative_to(plain))
            copy_back_time += time.perf_counter() - started
            started = time.perf_counter()
            for manifest in manifests:
                target = root / "back-tier" / manifest.name
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as sink:
                    tier.get(manifest, sink)
                    sink.flush()
                    os.fsync(sink.fileno())
            get_time += time.perf_counter() - started
            shutil.rmtree(root / "back-plain")
            shutil.rmtree(root / "back-tier")

        stats = tier.stats()
    assert stats.logical_bytes == logical
    print(f"{args.archives} archives of {args.vms} VMs ({args.disk_mib} MiB disks, {args.change:.0%} rewritten each)")
    print(f"logical {logical / MIB:.1f} MiB, stored {stats.stored_bytes / MIB:.1f} MiB in {stats.chunks} chunks")
    print(f"first archive alone: {logical / args.archives / MIB:.1f} MiB -> {first_stored / MIB:.1f} MiB")
    print(f"saving {stats.saving_percent:.1f}% (stored is {stats.stored_bytes / logical:.3f} of logical)")
    rate = logical / MIB
    print(
        f"put  {put_time:.2f} s ({rate / put_time:.0f} MiB/s) vs plain copy {copy_time:.2f} s: "
        f"{put_time / copy_time:.2f}x"
    )
    print(
        f"get  {get_time:.2f} s ({rate / get_time:.0f} MiB/s) vs plain copy back {copy_back_time:.2f} s: "
        f"{get_time / copy_back_time:.2f}x"
    )


if __name__ == "__main__":
    main()
