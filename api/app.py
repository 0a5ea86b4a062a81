"""create_app(settings): the FastAPI application and everything it owns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from adapters.runtime import Runtime
from adapters.settings import Settings
from api.auth import Authenticator
from api.deps import check_parameters
from api.docs import install_docs
from api.errors import install_error_handlers
from api.gate import document_gate, install_gate
from api.idempotency import IdempotencyMiddleware
from api.limits import BodyLimits
from api.notify import Notifier
from api.observability import RequestObservability
from api.openapi import install_openapi
from api.routeindex import index_routes
from api.routes import (
    archives,
    audit,
    board,
    capture,
    configurations,
    consoles,
    deployments,
    drift,
    governance,
    health,
    leases,
    me,
    media,
    metrics,
    placement,
    portability,
    preview,
    progress,
    services,
    storage,
    templates,
    tokens,
    upgrades,
    usage,
    users,
    webhooks,
)
from api.ui import install_console
from api.warmup import warm_routes

DESCRIPTION = """Stagekeeper moves multi-machine service configurations through the stages of a
release process on vSphere. Every change is an immutable event; reads of lists come from
projections and report the event position they reflect (`position`); pass `min_position`
to read your own writes. Authenticate with HTTP Basic (local `admin`) or a Bearer API token."""


def create_app(settings: Settings, runtime: Runtime | None = None, start_workers: bool = True) -> FastAPI:
    """Build the API. With `runtime` given, the caller owns it (tests); otherwise it is built here."""
    owned = runtime is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await warm_routes(app.router)
        await app.state.notifier.start()
        if start_workers and settings.run_workers:
            app.state.runtime.start_workers()
        yield
        await app.state.notifier.stop()
        if owned:
            app.state.runtime.close()

    app = FastAPI(
        title="Stagekeeper",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Every route's query and path parameters pass the text rule before anything runs.
        dependencies=[Depends(check_parameters)],
        # No OpenTelemetry here (Stagekeeper counts and logs requests itself, api/observability.py):
        # switched off, FastAPI no longer asks the OpenTelemetry providers about every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.runtime = runtime or Runtime(settings)
    runtime_ = app.state.runtime
    app.state.authenticator = Authenticator(
        runtime_.app,
        settings.credential_cache_seconds,
        directory=runtime_.directory,
        admin_group=settings.ldap_admin_group,
        # With a directory, the local admin is break-glass only: enabled by STAGEKEEPER_ADMIN_PASSWORD.
        local_admin_enabled=runtime_.directory is None or settings.admin_password is not None,
        sso_enabled=settings.oidc_issuer is not None,
        sso_admin_group=settings.oidc_admin_group,
    )
    notifier = Notifier(runtime_.app.head, settings.poll_seconds)
    runtime_.app.on_commit(lambda saved: notifier.notify(saved.position, saved.originator_ids, saved.positions))
    app.state.notifier = notifier
    app.state.stream_slots = progress.StreamSlots(settings.max_streams_per_caller)
    app.state.stream_limiter = progress.read_limiter()
    install_error_handlers(app)
    install_gate(app)
    install_openapi(app)
    document_gate(app)
    install_docs(app)
    app.add_middleware(
        IdempotencyMiddleware,
        application=runtime_.app,
        authenticator=app.state.authenticator,
        wait_seconds=settings.unavailable_seconds,
    )
    # Added late, so it runs early: no other middleware reads a body past the limit.
    app.add_middleware(BodyLimits, max_body_bytes=settings.max_body_bytes)
    # Outermost: every answer gets its request id and is counted, the limits' refusals included.
    app.add_middleware(RequestObservability, metrics=runtime_.metrics)
    runtime_.metrics.streams.set_function(app.state.stream_slots.total)
    for module in (health, me, services, configurations, deployments, progress, templates, tokens, board, audit):
        app.include_router(module.router)
    app.include_router(consoles.router)
    app.include_router(capture.router)
    app.include_router(upgrades.router)
    app.include_router(metrics.router)
    app.include_router(users.router)
    app.include_router(portability.router)
    app.include_router(governance.router)
    app.include_router(usage.router)
    app.include_router(placement.router)
    app.include_router(archives.router)
    app.include_router(media.router)
    app.include_router(storage.router)
    app.include_router(drift.router)
    app.include_router(preview.router)
    app.include_router(leases.router)
    app.include_router(webhooks.router)
    install_console(app)
    # Last: the included routers a request's path cannot match are passed over (api/routeindex.py).
    index_routes(app.router.routes)
    return app
