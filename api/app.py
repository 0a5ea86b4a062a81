"""create_app(settings): the FastAPI application and everything it owns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from adapters.runtime import Runtime
from adapters.settings import Settings
from api.auth import Authenticator
from api.errors import install_error_handlers
from api.routes import (
    audit,
    board,
    configurations,
    consoles,
    deployments,
    health,
    me,
    progress,
    services,
    templates,
    tokens,
)

DESCRIPTION = """Stagekeeper moves multi-machine service configurations through the stages of a
release process on vSphere. Every change is an immutable event; reads of lists come from
projections and report the event position they reflect (`position`); pass `min_position`
to read your own writes. Authenticate with HTTP Basic (local `admin`) or a Bearer API token."""


def create_app(settings: Settings, runtime: Runtime | None = None, start_workers: bool = True) -> FastAPI:
    """Build the API. With `runtime` given, the caller owns it (tests); otherwise it is built here."""
    owned = runtime is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start_workers and settings.run_workers:
            app.state.runtime.start_workers()
        yield
        if owned:
            app.state.runtime.close()

    app = FastAPI(title="Stagekeeper", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.runtime = runtime or Runtime(settings)
    runtime_ = app.state.runtime
    app.state.authenticator = Authenticator(
        runtime_.app,
        settings.credential_cache_seconds,
        directory=runtime_.directory,
        admin_group=settings.ldap_admin_group,
        # With a directory, the local admin is break-glass only: enabled by STAGEKEEPER_ADMIN_PASSWORD.
        local_admin_enabled=runtime_.directory is None or settings.admin_password is not None,
    )
    install_error_handlers(app)
    for module in (health, me, services, configurations, deployments, progress, templates, tokens, board, audit):
        app.include_router(module.router)
    app.include_router(consoles.router)
    return app
