"""The `stagekeeper` command: serve, worker, projections rebuild."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from adapters.runtime import Runtime, print_generated_password
from adapters.settings import Settings, SettingsError


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from api.app import create_app

    runtime = Runtime(settings)
    generated = runtime.ensure_admin()
    if generated:
        print_generated_password(generated)
    app = create_app(settings, runtime=runtime)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        runtime.close()
    return 0


def _worker(settings: Settings) -> int:
    runtime = Runtime(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime.start_workers()
    logging.getLogger("stagekeeper").info("worker running against %s", runtime.db.kind)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        runtime.close()
    return 0


def _rebuild(settings: Settings, name: str) -> int:
    runtime = Runtime(settings)
    try:
        names = [p.name for p in runtime.projections]
        if name not in names:
            print(f"no projection named {name!r}; known: {', '.join(names)}", file=sys.stderr)
            return 2
        count = runtime.projection_follower.rebuild(name)
        print(f"rebuilt {name}: replayed {count} events")
        return 0
    finally:
        runtime.close()


def _audit_export(settings: Settings, fmt: str, output: str | None, service: str | None) -> int:
    from api.export import csv_chunks, jsonl_lines
    from projections.audit_queries import AuditFilter

    runtime = Runtime(settings)
    try:
        runtime.projection_follower.catch_up()
        # The whole log, bookkeeping entries included: an export is a complete copy of the chain.
        rows = runtime.audit.stream(AuditFilter(service_id=service, include_system=True))
        chunks = csv_chunks(rows) if fmt == "csv" else jsonl_lines(rows)
        target = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
        try:
            for chunk in chunks:
                target.write(chunk)
        finally:
            if output:
                target.close()
        return 0
    finally:
        runtime.close()


def _audit_verify(settings: Settings) -> int:
    from projections.verify import verify

    runtime = Runtime(settings)
    try:
        runtime.projection_follower.catch_up()
        verdict = verify(runtime.app, runtime.store)
        print(verdict.describe())
        return 0 if verdict.ok else 1
    finally:
        runtime.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stagekeeper", description="Event-sourced stage manager for vSphere")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="API and background workers in one process")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    commands.add_parser("worker", help="background workers only (projections, process manager)")
    projections = commands.add_parser("projections", help="manage read models")
    projections_commands = projections.add_subparsers(dest="action", required=True)
    rebuild = projections_commands.add_parser("rebuild", help="rebuild one read model from position zero")
    rebuild.add_argument("name")
    audit = commands.add_parser("audit", help="export or verify the audit log")
    audit_commands = audit.add_subparsers(dest="action", required=True)
    export = audit_commands.add_parser("export", help="stream the audit log (oldest first)")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--output", help="file to write (default: standard output)")
    export.add_argument("--service", help="only this service id")
    audit_commands.add_parser("verify", help="recompute the hash chain from the event store")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except SettingsError as error:
        # A setting that cannot be used (parsed, or found at start-up): one line, no traceback.
        print(f"stagekeeper: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    if args.command == "worker":
        return _worker(settings)
    if args.command == "audit":
        if args.action == "export":
            return _audit_export(settings, args.format, args.output, args.service)
        return _audit_verify(settings)
    return _rebuild(settings, args.name)


if __name__ == "__main__":
    sys.exit(main())
