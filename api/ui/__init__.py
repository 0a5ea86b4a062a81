"""The web console: server-rendered pages under /ui/ on the API's own application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.ui import (
    audit,
    board,
    capture,
    configurations,
    copies,
    deployments,
    later,
    leases,
    lifecycle,
    live,
    services,
    signin,
    simulated_console,
)
from api.ui.context import Console

STATIC = Path(__file__).parent / "static"


def install_console(app: FastAPI) -> None:
    """Mount the console's routes and assets (its live pages wait on the app's shared notifier)."""
    app.state.console = Console(app.state.runtime)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(board.root)
    pages = (
        signin,
        board,
        live,
        services,
        capture,
        configurations,
        lifecycle,
        deployments,
        audit,
        copies,
        leases,
        later,
        simulated_console,
    )
    for module in pages:
        app.include_router(module.router)
