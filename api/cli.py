"""The `stagekeeper` command: server side (serve, worker, projections, audit) and the API client (api/client)."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading

import click

from adapters.interpreter import settle
from adapters.logs import configure as configure_logging
from adapters.runtime import Runtime, print_generated_password
from adapters.settings import Settings, SettingsError, metrics_bind
from api.client.commands import audit_query, register, remote_export
from projections.audit_queries import AuditFilter

# What `serve --processes` changes for all but the first process.
SERVE_WORKERS = "STAGEKEEPER_SERVE_WORKERS"
METRICS_ADDRESS = "STAGEKEEPER_METRICS_ADDRESS"


def _serve(settings: Settings, host: str, port: int, channel: int | None = None) -> int:
    """One process serving the API (and the background workers unless STAGEKEEPER_SERVE_WORKERS=false).
    With `channel`, it serves the connections `_serve_processes` hands it over that Unix socket."""
    import uvicorn

    from api.app import create_app
    from api.handoff import HandedServer

    runtime = Runtime(settings)
    if channel is None:
        generated = runtime.ensure_admin()
        if generated:
            print_generated_password(generated)
    app = create_app(settings, runtime=runtime)
    serve_metrics(runtime)
    settle(settings)  # start-up's objects out of the collector's way; the thread switch interval
    # Logging stays as configured (adapters/logs.py); Stagekeeper logs each request itself.
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, http=_http_parser(), loop=_event_loop()
    )
    try:
        if channel is None:
            uvicorn.Server(config).run()
        else:
            HandedServer(config, socket.socket(fileno=channel)).run()
    finally:
        runtime.close()
    return 0


def _serve_processes(settings: Settings, host: str, port: int, processes: int) -> int:
    """`processes` API processes behind one listening socket (each its own interpreter, so they use
    as many cores); the first also runs the background workers (and the metrics bind), the others
    are API-only. They share only the database, as separate `serve` and `worker` processes do. This
    process accepts the connections and hands each to the API process holding the fewest
    (api/handoff.py). Stops them all on SIGTERM/SIGINT, or when one of them exits."""
    from api.handoff import Dispatcher

    log = logging.getLogger("stagekeeper")
    # Tables and the local admin once, before the API processes start (they would race on a
    # generated password).
    runtime = Runtime(settings)
    try:
        generated = runtime.ensure_admin()
    finally:
        runtime.close()
    if generated:
        print_generated_password(generated)
    listener = socket.create_server((host, port), backlog=2048)
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(processes)]
    children: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    code = 0

    def running() -> bool:
        nonlocal code
        exited = next((child for child in children if child.poll() is not None), None)
        if exited is not None:
            log.error("API process %d exited with %s: stopping the others", exited.pid, exited.returncode)
            code = exited.returncode or 1
        return exited is None

    try:
        for index, (_, theirs) in enumerate(pairs):
            environ = dict(os.environ)
            if index > 0:
                environ[SERVE_WORKERS] = "false"
                environ.pop(METRICS_ADDRESS, None)
            fd = theirs.fileno()
            command = [sys.executable, "-m", "api.cli", "serve", "--channel", str(fd)]
            children.append(subprocess.Popen(command, env=environ, pass_fds=[fd]))  # noqa: S603 (this interpreter)
            theirs.close()
        log.info("serving on http://%s:%d with %d API processes (%s)", host, port, processes,
                 ", ".join(str(child.pid) for child in children))  # fmt: skip
        Dispatcher(listener, [ours for ours, _ in pairs]).run(stop.is_set, running)
    finally:
        listener.close()  # new connections are refused from here on
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for ours, _ in pairs:
            ours.close()
    return code


def _http_parser() -> str:
    """uvicorn's C parser (httptools, a dependency): its pure-Python one (h11) cost ~0.8 ms of
    every request (issue 15). An install without it still serves, and says why it is slower."""
    if importlib.util.find_spec("httptools") is not None:
        return "httptools"
    logging.getLogger("stagekeeper").warning("httptools is not installed: serving HTTP with h11 (slower)")
    return "h11"


# Set to "asyncio" to serve on the standard library's event loop (a comparison, a suspected bug).
EVENT_LOOP = "STAGEKEEPER_EVENT_LOOP"


def _event_loop() -> str:
    """uvloop (a dependency), a faster event loop than asyncio's: its transports, and the
    `call_soon_threadsafe` by which a thread-pool hop returns and the notifier wakes. An install
    without it still serves, and says why it is slower."""
    if os.environ.get(EVENT_LOOP, "").strip().lower() == "asyncio":
        return "asyncio"
    if importlib.util.find_spec("uvloop") is not None:
        return "uvloop"
    logging.getLogger("stagekeeper").warning("uvloop is not installed: serving on asyncio's event loop (slower)")
    return "asyncio"


def _worker(settings: Settings) -> int:
    runtime = Runtime(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve_metrics(runtime)
    settle(settings)
    runtime.start_workers()
    logging.getLogger("stagekeeper").info("worker running against %s", runtime.db.kind)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        runtime.close()
    return 0


def serve_metrics(runtime: Runtime) -> None:
    """With STAGEKEEPER_METRICS_ADDRESS: this process's metrics on that bind, without authentication."""
    if runtime.settings.metrics_address is None:
        return
    from prometheus_client import start_http_server

    host, port = metrics_bind(runtime.settings.metrics_address)
    start_http_server(port, addr=host, registry=runtime.metrics.registry)
    logging.getLogger("stagekeeper").info("metrics on http://%s:%d/metrics", host, port)


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


def _settings() -> Settings:
    return Settings.from_env(os.environ)


def _logging() -> None:
    settings = _settings()
    configure_logging(settings.log_format, settings.log_level)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Event-sourced stage manager for vSphere.

    Server side: serve, worker, projections, audit verify, audit export (read the event store of
    this machine's settings). Client side: login, then every other command talks to a server's API.
    Shell completion: eval "$(_STAGEKEEPER_COMPLETE=bash_source stagekeeper)".
    """


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="API processes sharing the port (one core each); the first also runs the background workers",
)
@click.option(
    "--channel", type=int, default=None, hidden=True, help="Serve the connections handed over this inherited socket"
)
def serve(host: str, port: int, processes: int, channel: int | None) -> int:
    """API and background workers in one process (or --processes N: N API processes on one port).

    With --processes N the first process runs the API and the background workers, the other N-1
    only the API; all share the database. Each process has its own credential cache and request
    limits, and only the first serves STAGEKEEPER_METRICS_ADDRESS."""
    _logging()
    if processes > 1:
        return _serve_processes(_settings(), host, port, processes)
    return _serve(_settings(), host, port, channel)


@cli.command()
def worker() -> int:
    """Background workers only (projections, process manager)."""
    _logging()
    return _worker(_settings())


@cli.group()
def projections() -> None:
    """Manage read models."""


@projections.command()
@click.argument("name")
def rebuild(name: str) -> int:
    """Rebuild one read model from position zero."""
    _logging()
    return _rebuild(_settings(), name)


@cli.group()
def audit() -> None:
    """Export, verify or query the audit log."""


@audit.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", help="File to write (default: standard output)")
@click.option("--service", help="Only this service (id; with --remote also a name)")
@click.option("--remote", is_flag=True, help="From the server you logged in to, not from the local event store")
def export(fmt: str, output: str | None, service: str | None, remote: bool) -> int:
    """Stream the audit log (oldest first)."""
    if remote:
        return remote_export(service, fmt, output)
    _logging()
    return _audit_export(_settings(), fmt, output, service)


@audit.command()
def verify() -> int:
    """Recompute the hash chain from the event store."""
    _logging()
    return _audit_verify(_settings())


@cli.group()
def siem() -> None:
    """Audit streaming to a SIEM (STAGEKEEPER_SIEM_*)."""


@siem.command()
@click.argument("sink", type=click.Choice(["syslog", "webhook"]))
@click.option("--set", "new_position", type=click.IntRange(0), default=None, help="Resend from after this position")
def position(sink: str, new_position: int | None) -> int:
    """Show (or move) the audit position a sink has received up to."""
    from adapters.siem import position_of, set_position

    _logging()
    runtime = Runtime(_settings())
    try:
        runtime.projection_follower.catch_up()
        if new_position is not None:
            set_position(runtime.store, sink, new_position)
        head = runtime.audit.page(AuditFilter(include_system=True), None, 1)[0]
        last = int(head[0]["position"]) if head else 0
        at = position_of(runtime.store, sink)
        click.echo(f"{sink}: sent up to position {at}; the audit log ends at {last} ({max(last - at, 0)} to send)")
        return 0
    finally:
        runtime.close()


audit.add_command(audit_query())
register(cli)


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit code is returned (the console script exits with it)."""
    try:
        result = cli.main(args=argv, prog_name="stagekeeper", standalone_mode=False)
    except click.exceptions.Exit as stop:
        return int(stop.exit_code)
    except click.ClickException as error:
        error.show()
        return int(error.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except SettingsError as error:
        # A setting that cannot be used (parsed, or found at start-up): one line, no traceback.
        click.echo(f"stagekeeper: {error}", err=True)
        return 2
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
