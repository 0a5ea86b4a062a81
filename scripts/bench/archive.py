"""Archive Now + restore of a 3-VM deployment on vcsim (-ds 2), against a plain pyvmomi script
copying the same files; then the file tier's space for 10 archives of one configuration.

Part 1. Stagekeeper archives the deployment (power off, record each machine, read every file's
SHA-256 through vCenter's HTTP file access, copy it with CopyDatastoreFile_Task to LocalDS_1, power
on; every step an event in PostgreSQL) and restores it into another stage (copy each file back,
check its SHA-256, register, re-add devices, NICs and MACs, power on, adopt as a deployment). The
baseline copies the same files to LocalDS_1 and back with CopyDatastoreFile_Task, nothing else;
a second baseline ("small by HTTP") copies the files up to SMALL_FILE (1 MiB) through vCenter's
HTTP file access instead (GET then PUT on /folder, as Stagekeeper does; a plain script can too)
and the others by copy task: Stagekeeper's ratio against it is the fair one.
Each VM's disk gets distinct content, so deduplication gives Stagekeeper no advantage; vcsim adds
a fixed delay per copy so that vCenter's copy time dominates, as on a real datastore.
Part 2. Ten archives of the same configuration (one log line changed between them), each moved to
a file tier: logical vs stored bytes, the saving in percent.
Part 1 runs `--runs` times (a fresh deployment each time; the one-at-a-time plain copy in the first
run only); each run's ratio is Stagekeeper's archive + restore over that run's plain parallel copy
(the better of the copy before the archive and the copy of the restored VMs), min/median/max over
the runs, against each baseline. `--no-small-files` sends every file of Stagekeeper through a copy
task (see domain/processes/archive_copies.py: files up to SMALL_FILE go through vCenter's HTTP file
access instead); the copy-task baseline is then the fair one.
`--workers`: the service runs as `stagekeeper serve` runs it, its worker threads following the
event store (projections, process managers, usage collector, lease and drift workers), and the
clock stops when the Archive aggregate records the archive complete (the restore restored),
checked every 5 ms; without it (the default), every follower runs once in the bench's own thread
after each command (`Runtime.catch_up`, as the tests do), so the read models' updates for every
event of the archive are on the timed path, one after the other.
Each run also gives the bench process's own CPU time (every thread) during the archive and the
restore (`archive_cpu_s`, `restore_cpu_s`): on a machine loaded by other work, the wall times follow
the load, the CPU time what the code costs; and `each_run`, every run's figures, so that
scripts/bench/archive_compare.sh (old and new checkouts alternated) and archive_pool.py can pool them.
Goal (issue 12): part 1 ratio <= 1.3.
Usage: .venv/bin/python -m scripts.bench.archive [--disk-mib 8] [--copy-ms 150] [--archives 10] [--runs 5]
       [--no-small-files] [--workers]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID

from adapters import interpreter
from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.pyvmomi.archives import PyVmomiArchiveStorage
from domain.archive_ports import DatastoreFile
from domain.processes import archive_copies
from scripts.bench.common import schema
from scripts.vcsim_harness import Vcsim, start
from tests.support import machine, stages

SMALL = archive_copies.SMALL_FILE  # the default, whatever --no-small-files sets for Stagekeeper
PARALLEL = 8  # vCenter tasks at once, as STAGEKEEPER_VCENTER_PARALLEL_TASKS
MACHINES = [machine("web"), machine("app"), machine("db", template="tpl-rhel-9")]


WORKERS = False  # --workers: the runtime's own worker threads follow the store


def wait(runtime: Runtime, done: object, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not finish")
        time.sleep(0.02)


def settle(runtime: Runtime, done: Callable[[], bool], what: str, timeout: float = 600) -> None:
    """Until `done`: the followers once in this thread, or (--workers) the worker threads' work
    watched every 5 ms."""
    if not WORKERS:
        runtime.catch_up()
        runtime.catch_up()
        return
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not finish")
        time.sleep(0.005)


def baseline(
    storage: PyVmomiArchiveStorage, vm_ids: list[str], run: str, parallel: int, small_by_http: bool = False
) -> float:
    """Plain script: every VM file to LocalDS_1, then back, one CopyDatastoreFile_Task each,
    `parallel` at a time (1: one after the other). `small_by_http`: files up to SMALL (1 MiB) are
    read and written through vCenter's HTTP file access instead, as Stagekeeper sends them."""
    started = time.perf_counter()
    pairs = []
    for vm_id in vm_ids:
        folder = DatastoreFile("LocalDS_1", f"plain-{run}/{vm_id}")
        back = DatastoreFile("LocalDS_0", f"plain-{run}-{vm_id}")
        storage.make_folder(folder)
        storage.make_folder(back)
        for f, size in storage.vm_file_sizes(vm_id):
            name = f.path.rsplit("/", 1)[-1]
            to = DatastoreFile("LocalDS_1", f"{folder.path}/{name}")
            pairs.append((f, to, DatastoreFile("LocalDS_0", f"{back.path}/{name}"), small_by_http and size <= SMALL))

    def copy(source: DatastoreFile, target: DatastoreFile, by_http: bool) -> None:
        if not by_http:
            storage.copy_file(source, target)
            return
        data = storage.read_file(source, lambda stream: stream.read())
        storage.write_file(target, io.BytesIO(data), len(data))

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(lambda p: copy(p[0], p[1], p[3]), pairs))
        list(pool.map(lambda p: copy(p[1], p[2], p[3]), pairs))
    return time.perf_counter() - started


def spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def one_run(runtime: Runtime, sim: Vcsim, service_id: UUID, disk_mib: int, copy_ms: int, run: int,
            sequential: bool) -> dict[str, Any]:  # fmt: skip
    """Deploy, then: the plain copy there and back, Archive Now, undeploy, restore, the plain copy
    again on the restored VMs (the better of the two plain figures is the run's baseline). Each run
    deploys a configuration of its own: its archive is a first one, with no earlier archive of the
    configuration on the tier to reuse files from (as the plain copy has none)."""
    app = runtime.app
    configuration_id = app.create_configuration(
        service_id, f"c{run}", "", [{"name": "front"}], MACHINES, "bench"
    ).value.id
    storage = runtime.archive_storage
    assert isinstance(storage, PyVmomiArchiveStorage)
    deployment_id = app.deploy(configuration_id, "int", actor="bench").value.id
    settle(runtime, lambda: app.deployment(deployment_id).state in ("deployed", "failed"), "deploy")
    deployment = app.deployment(deployment_id)
    assert deployment.state == "deployed", deployment.failure
    local = Path(next(ds.info.url for ds in storage._datacenter().datastore if ds.name == "LocalDS_0"))
    for m in deployment.machines:
        (local / m["vm_name"] / f"{m['vm_name']}-flat.vmdk").write_bytes(os.urandom(disk_mib << 20))
    vm_ids = [m["vm_id"] for m in deployment.machines]
    sim.control("method-delay", method="CopyDatastoreFile_Task", ms=copy_ms)
    try:
        seq = baseline(storage, vm_ids, f"{run}a", 1) if sequential else None
        parallel = baseline(storage, vm_ids, f"{run}b", PARALLEL)
        http = baseline(storage, vm_ids, f"{run}c", PARALLEL, small_by_http=True)
        started, cpu = time.perf_counter(), time.process_time()
        archive_id = app.archive_now(deployment_id, actor="bench").value.id
        if WORKERS:
            settle(runtime, lambda: app.archive(archive_id).state in ("complete", "failed"), "archive")
        else:
            runtime.catch_up()
        archived, archive_cpu = time.perf_counter() - started, time.process_time() - cpu
        archive = app.archive(archive_id)
        assert archive.state == "complete", archive.failure
        app.undeploy(deployment_id, actor="bench")
        settle(runtime, lambda: app.deployment(deployment_id).state in ("undeployed", "failed"), "undeploy")
        started, cpu = time.perf_counter(), time.process_time()
        app.restore_archive(archive_id, "test", False, actor="bench")

        def restore_over() -> bool:
            restores = app.archive(archive_id).restores.values()
            return any(r["state"] in ("restored", "failed") for r in restores)

        settle(runtime, restore_over, "restore")
        restored, restore_cpu = time.perf_counter() - started, time.process_time() - cpu
        restore = next(iter(app.archive(archive_id).restores.values()))
        assert restore["state"] == "restored", restore["failure"]
        restored_vms = list(restore["machines"].values())
        parallel = min(parallel, baseline(storage, restored_vms, f"{run}d", PARALLEL))
        http = min(http, baseline(storage, restored_vms, f"{run}e", PARALLEL, small_by_http=True))
    finally:
        sim.control("method-delay", method="CopyDatastoreFile_Task", ms=0)
    return {
        "archive_id": archive_id, "restored_id": UUID(str(restore["deployment_id"])), "files": len(archive.files),
        "bytes": archive.view()["logical_bytes"], "archive_s": archived, "restore_s": restored,
        "plain_parallel_s": parallel, "plain_sequential_s": seq, "ratio": (archived + restored) / parallel,
        "plain_small_by_http_s": http, "ratio_http": (archived + restored) / http,
        # The bench process's own CPU (every thread) in each: on a loaded machine, what the code costs.
        "archive_cpu_s": archive_cpu, "restore_cpu_s": restore_cpu,
    }  # fmt: skip


def main() -> None:
    # The interpreter as a `stagekeeper serve` or `worker` process runs (the plain script's threads
    # share it): STAGEKEEPER_SWITCH_INTERVAL_MS compares switch intervals.
    interpreter.settle(Settings())
    parser = argparse.ArgumentParser()
    parser.add_argument("--disk-mib", type=int, default=8)
    parser.add_argument("--copy-ms", type=int, default=150)
    parser.add_argument("--archives", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--no-small-files", action="store_true",
        help="every file by a CopyDatastoreFile_Task, none through the HTTP file access (what that route gives)",
    )  # fmt: skip
    parser.add_argument("--workers", action="store_true", help="the runtime's worker threads, as the server runs")
    args = parser.parse_args()
    global WORKERS
    WORKERS = args.workers
    if args.no_small_files:
        archive_copies.SMALL_FILE = -1
    work = Path(tempfile.mkdtemp(prefix="sk-bench-archive-"))
    sim = start(work / "vcsim.log", "-pg", "3", "-ds", "2")
    results: dict[str, object] = {}
    try:
        with schema() as (_, url):
            tier = f"file:{work / 'cold'}"
            settings = Settings(database_url=url, vcenter_driver="pyvmomi", vcenter_url=sim.sdk, vcenter_user="user",
                                vcenter_password="pass", vcenter_task_timeout=120, archive_tiers=f"LocalDS_1,{tier}",
                                poll_seconds=0.02)  # fmt: skip
            runtime = Runtime(settings)
            app = runtime.app
            app.import_templates(None, True, actor="bench")
            service_id = app.register_service("bench", "", stages("int", "test"), actor="bench").value.id
            if WORKERS:
                runtime.start_workers()
            runs = [
                one_run(runtime, sim, service_id, args.disk_mib, args.copy_ms, i, sequential=i == 0)
                for i in range(args.runs)
            ]
            first = runs[0]
            results["archive_restore"] = {
                "runs": args.runs, "files": first["files"], "bytes": first["bytes"], "copy_ms": args.copy_ms,
                "small_files_by_http": not args.no_small_files,
                "archive_s": spread([r["archive_s"] for r in runs]),
                "restore_s": spread([r["restore_s"] for r in runs]),
                "plain_parallel_s": spread([r["plain_parallel_s"] for r in runs]),
                "plain_sequential_s": round(first["plain_sequential_s"], 3),
                "ratio_vs_parallel": spread([r["ratio"] for r in runs]),
                "plain_small_by_http_s": spread([r["plain_small_by_http_s"] for r in runs]),
                "ratio_vs_small_by_http": spread([r["ratio_http"] for r in runs]),
                "archive_cpu_s": spread([r["archive_cpu_s"] for r in runs]),
                "restore_cpu_s": spread([r["restore_cpu_s"] for r in runs]),
                # Each run's figures, to pool runs of several invocations (scripts/bench/archive_compare.sh).
                "each_run": [
                    {key: round(r[key], 4) for key in ("archive_s", "restore_s", "plain_parallel_s",
                                                       "plain_small_by_http_s", "ratio", "ratio_http",
                                                       "archive_cpu_s", "restore_cpu_s")}
                    for r in runs
                ],
            }  # fmt: skip

            # Part 2: ten archives of the same configuration on the file tier.
            storage = runtime.archive_storage
            assert isinstance(storage, PyVmomiArchiveStorage)
            local = Path(next(ds.info.url for ds in storage._datacenter().datastore if ds.name == "LocalDS_0"))
            restored_id = runs[-1]["restored_id"]
            for i in range(args.archives):
                vm = app.deployment(restored_id).machines[0]
                with (local / vm["vm_name"] / "vmware.log").open("ab") as log:
                    log.write(f"archive {i}\n".encode())
                next_id = app.archive_now(restored_id, actor="bench").value.id
                settle(runtime, lambda: app.archive(next_id).state in ("complete", "failed"), "archive")  # noqa: B023
                app.move_archive(next_id, tier, actor="bench")
                settle(runtime, lambda: app.archive(next_id).moving is None, "move")  # noqa: B023
                assert app.archive(next_id).tier == tier, app.archive(next_id).move_failure
            if args.archives:
                logical, stored = runtime.file_tiers[tier].stats()
                results["file_tier"] = {
                    "archives": args.archives, "logical_bytes": logical, "stored_bytes": stored,
                    "saving_percent": round(100 * (1 - stored / logical), 1),
                }  # fmt: skip
            runtime.close()
    finally:
        sim.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
