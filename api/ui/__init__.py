"""The web console: server-rendered pages under /ui/ on the API's own application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.ui import (
    approvals,
    archives,
    audit,
    board,
    capture,
    configurations,
    copies,
    deployments,
    drift,
    leases,
    lifecycle,
    live,
    media,
    oidc,
    placement,
    resources,
    services,
    signin,
    simulated_console,
    tokens,
    users,
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
        placement,
        drift,
        deployments,
        audit,
        copies,
        leases,
        resources,
        simulated_console,
        users,
        approvals,
        archives,
        media,
    )
    for module in pages:
        app.include_router(module.router)
    app.include_router(drift.orphans_router)
    app.include_router(oidc.router)
    app.include_router(tokens.router)
