"""The web console: server-rendered pages under /ui/ on the API's own application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.notify import Notifier
from api.ui import audit, board, configurations, deployments, later, live, services, signin
from api.ui.context import Console

STATIC = Path(__file__).parent / "static"


def install_console(app: FastAPI) -> None:
    """Mount the console's routes and assets; share the app's notifier (or make one)."""
    runtime = app.state.runtime
    app.state.console = Console(runtime)
    if getattr(app.state, "notifier", None) is None:
        notifier = Notifier(runtime.app.head, runtime.settings.poll_seconds)
        runtime.app.on_saved(lambda position, _topics: notifier.notify(position))
        app.state.notifier = notifier
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(board.root)
    for module in (signin, board, live, services, configurations, deployments, audit, later):
        app.include_router(module.router)
