"""Archive Now + restore of a 3-VM deployment on vcsim (-ds 2), against a plain pyvmomi script
copying the same files; then the file tier's space for 10 archives of one configuration.

Part 1. Stagekeeper archives the deployment (power off, record each machine, read every file's
SHA-256 through vCenter's HTTP file access, copy it with CopyDatastoreFile_Task to LocalDS_1, power
on; every step an event in PostgreSQL) and restores it into another stage (copy each file back,
check its SHA-256, register, re-add devices, NICs and MACs, power on, adopt as a deployment). The
baseline copies the same files to LocalDS_1 and back with CopyDatastoreFile_Task, nothing else.
Each VM's disk gets distinct content, so deduplication gives Stagekeeper no advantage; vcsim adds
a fixed delay per copy so that vCenter's copy time dominates, as on a real datastore.
Part 2. Ten archives of the same configuration (one log line changed between them), each moved to
a file tier: logical vs stored bytes, the saving in percent.
Goal (issue 12): part 1 ratio <= 1.3.
Usage: .venv/bin/python -m scripts.bench.archive [--disk-mib 8] [--copy-ms 150] [--archives 10]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import UUID

from adapters.runtime import Runtime
from adapters.settings import Settings
from adapters.vcenter.pyvmomi.archives import PyVmomiArchiveStorage
from domain.archive_ports import DatastoreFile
from scripts.bench.common import schema
from scripts.vcsim_harness import start
from tests.support import machine, stages

PARALLEL = 8  # vCenter tasks at once, as STAGEKEEPER_VCENTER_PARALLEL_TASKS
MACHINES = [machine("web"), machine("app"), machine("db", template="tpl-rhel-9")]


def wait(runtime: Runtime, done: object, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not finish")
        time.sleep(0.02)


def baseline(storage: PyVmomiArchiveStorage, vm_ids: list[str], run: str, parallel: int) -> float:
    """Plain script: every VM file to LocalDS_1, then back, one CopyDatastoreFile_Task each,
    `parallel` at a time (1: one after the other)."""
    started = time.perf_counter()
    pairs = []
    for vm_id in vm_ids:
        folder = DatastoreFile("LocalDS_1", f"plain-{run}/{vm_id}")
        back = DatastoreFile("LocalDS_0", f"plain-{run}-{vm_id}")
        storage.make_folder(folder)
        storage.make_folder(back)
        for f in storage.vm_files(vm_id):
            name = f.path.rsplit("/", 1)[-1]
            pairs.append(
                (
                    f,
                    DatastoreFile("LocalDS_1", f"{folder.path}/{name}"),
                    DatastoreFile("LocalDS_0", f"{back.path}/{name}"),
                )
            )
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(lambda p: storage.copy_file(p[0], p[1]), pairs))
        list(pool.map(lambda p: storage.copy_file(p[1], p[2]), pairs))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--disk-mib", type=int, default=8)
    parser.add_argument("--copy-ms", type=int, default=150)
    parser.add_argument("--archives", type=int, default=10)
    args = parser.parse_args()
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
            storage = runtime.archive_storage
            assert isinstance(storage, PyVmomiArchiveStorage)
            app = runtime.app
            app.import_templates(None, True, actor="bench")
            service_id = app.register_service("bench", "", stages("int", "test"), actor="bench").value.id
            configuration_id = app.create_configuration(
                service_id, "c", "", [{"name": "front"}], MACHINES, "bench"
            ).value.id
            deployment_id = app.deploy(configuration_id, "int", actor="bench").value.id
            runtime.catch_up()
            deployment = app.deployment(deployment_id)
            assert deployment.state == "deployed", deployment.failure
            local = Path(next(ds.info.url for ds in storage._datacenter().datastore if ds.name == "LocalDS_0"))
            for m in deployment.machines:
                (local / m["vm_name"] / f"{m['vm_name']}-flat.vmdk").write_bytes(os.urandom(args.disk_mib << 20))
            vm_ids = [m["vm_id"] for m in deployment.machines]
            sim.control("method-delay", method="CopyDatastoreFile_Task", ms=args.copy_ms)

            sequential = baseline(storage, vm_ids, "a", 1)
            parallel = baseline(storage, vm_ids, "b", PARALLEL)
            started = time.perf_counter()
            archive_id = app.archive_now(deployment_id, actor="bench").value.id
            runtime.catch_up()
            archived = time.perf_counter() - started
            archive = app.archive(archive_id)
            assert archive.state == "complete", archive.failure
            app.undeploy(deployment_id, actor="bench")
            runtime.catch_up()
            started = time.perf_counter()
            app.restore_archive(archive_id, "test", False, actor="bench")
            runtime.catch_up()
            runtime.catch_up()
            restored = time.perf_counter() - started
            restore = next(iter(app.archive(archive_id).restores.values()))
            assert restore["state"] == "restored", restore["failure"]
            restored_ids = list(restore["machines"].values())
            sequential = min(sequential, baseline(storage, restored_ids, "c", 1))
            parallel = min(parallel, baseline(storage, restored_ids, "d", PARALLEL))
            ours = archived + restored
            results["archive_restore"] = {
                "files": len(archive.files), "bytes": archive.view()["logical_bytes"], "copy_ms": args.copy_ms,
                "archive_s": round(archived, 3), "restore_s": round(restored, 3),
                "plain_sequential_s": round(sequential, 3), "plain_parallel_s": round(parallel, 3),
                "ratio_vs_sequential": round(ours / sequential, 3), "ratio_vs_parallel": round(ours / parallel, 3),
            }  # fmt: skip
            sim.control("method-delay", method="CopyDatastoreFile_Task", ms=0)

            # Part 2: ten archives of one configuration on the file tier.
            restored_id = UUID(str(restore["deployment_id"]))
            log_path = None
            for i in range(args.archives):
                vm = app.deployment(restored_id).machines[0]
                log_path = local / vm["vm_name"] / "vmware.log"
                with log_path.open("ab") as log:
                    log.write(f"archive {i}\n".encode())
                next_id = app.archive_now(restored_id, actor="bench").value.id
                runtime.catch_up()
                app.move_archive(next_id, tier, actor="bench")
                runtime.catch_up()
                assert app.archive(next_id).tier == tier, app.archive(next_id).move_failure
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
