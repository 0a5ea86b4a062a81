"""Wires settings to the application, read store, drivers and workers (the composition root)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from adapters.clock import SystemClock
from adapters.ldap_directory import LdapDirectory, LdapSettings
from adapters.lease_workers import LeaseWorkers
from adapters.pglock import advisory_key
from adapters.readstore import open_read_store
from adapters.settings import Database, Settings, SettingsError, database, event_store_env
from adapters.simulator_state import FileState, InventoryState, PostgresState
from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from adapters.vcenter.pyvmomi.session import ConnectionSettings
from adapters.vcenter.simulated import SimulatedVCenter
from adapters.workers import FollowerThread, Leadership, leader_only
from domain.credentials import new_password
from domain.ports import Clock, Directory, VCenterDriver
from domain.processes.deployments import TOPICS, DeploymentProcess
from domain.stagekeeper import Stagekeeper
from projections.audit import AuditProjection
from projections.audit_queries import AuditQueries
from projections.base import Projection
from projections.configurations import ConfigurationsProjection
from projections.deployments import DeploymentsProjection
from projections.follower import ProcessFollower, ProjectionFollower, install
from projections.grants import GrantsProjection
from projections.history import ConfigurationHistoryProjection
from projections.queries import ReadModels
from projections.services import ServicesProjection
from projections.tokens import TokensProjection

log = logging.getLogger("stagekeeper")

PROCESS_NAME = "process:deployments"
PROCESS_TOPICS = frozenset(TOPICS)
# Gathering a few milliseconds of events per projection transaction keeps the projection
# thread from competing with every single command for the interpreter.
PROJECTION_DEBOUNCE = 0.005
ADMIN = "admin"


def projections(app: Stagekeeper) -> list[Projection]:
    return [
        ServicesProjection(),
        ConfigurationsProjection(),
        DeploymentsProjection(lambda deployment_id, version: app.deployment(deployment_id, version=version)),
        AuditProjection(),
        ConfigurationHistoryProjection(),
        GrantsProjection(),
        TokensProjection(),
        *LeaseWorkers.projections(),
    ]


def make_vcenter(settings: Settings, db: Database) -> VCenterDriver:
    if settings.vcenter_driver == "simulated":
        # The simulated inventory outlives a restart like the event store does: a file beside a
        # SQLite database (or STAGEKEEPER_SIMULATOR_STATE), a table in a PostgreSQL schema.
        state: InventoryState | None = None
        if settings.simulator_state is not None:
            state = FileState(Path(settings.simulator_state))
        elif db.kind == "sqlite" and db.path != ":memory:":
            state = FileState(Path(db.path + ".vcenter-sim.json"))
        elif db.kind == "postgres":
            state = PostgresState(db)
        return SimulatedVCenter(state=state, task_seconds=settings.simulator_task_seconds)
    if not (settings.vcenter_url and settings.vcenter_user and settings.vcenter_password):
        raise SettingsError("the pyvmomi driver needs STAGEKEEPER_VCENTER_URL, _USER and _PASSWORD")
    connection = ConnectionSettings(
        url=settings.vcenter_url,
        user=settings.vcenter_user,
        password=settings.vcenter_password,
        verify_tls=settings.vcenter_verify_tls,
        ca_bundle=settings.vcenter_ca_bundle,
        task_timeout=settings.vcenter_task_timeout,
    )
    return PyVmomiDriver(connection, default_network=settings.vcenter_default_network)


@contextmanager
def schema_lock(db: Database) -> Iterator[None]:
    """Serialise table creation between processes starting at once (PostgreSQL only), and create
    the schema named by `?schema=` when it does not exist yet."""
    if db.kind != "postgres":
        yield
        return
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (advisory_key(db, "schema"),))
        try:
            # CREATE SCHEMA needs the CREATE privilege even when the schema exists: look first.
            found = db.schema and conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (db.schema,)).fetchone()
            if db.schema and not found:
                try:
                    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(db.schema)))
                except psycopg.errors.InsufficientPrivilege:
                    raise SettingsError(
                        f"STAGEKEEPER_DATABASE_URL: schema {db.schema!r} does not exist and user "
                        f"{db.user or 'postgres'!r} may not create it"
                    ) from None
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (advisory_key(db, "schema"),))


def make_directory(settings: Settings) -> Directory | None:
    if not settings.ldap_url:
        return None
    assert settings.ldap_bind_dn
    assert settings.ldap_bind_password is not None
    assert settings.ldap_user_base
    assert settings.ldap_group_base
    return LdapDirectory(
        LdapSettings(
            url=settings.ldap_url,
            bind_dn=settings.ldap_bind_dn,
            bind_password=settings.ldap_bind_password,
            user_base=settings.ldap_user_base,
            group_base=settings.ldap_group_base,
            user_filter=settings.ldap_user_filter,
            start_tls=settings.ldap_start_tls,
            ca_file=settings.ldap_ca_file,
        )
    )


class Runtime:
    """Everything one Stagekeeper process needs, built from settings; `close()` releases it all."""

    def __init__(
        self,
        settings: Settings,
        vcenter: VCenterDriver | None = None,
        clock: Clock | None = None,
        directory: Directory | None = None,
    ) -> None:
        self.settings = settings
        self.db = database(settings.database_url)
        self.clock = clock or SystemClock()
        self.directory = directory if directory is not None else make_directory(settings)
        with schema_lock(self.db):
            # Inside the lock: the simulated inventory's table lives in the (maybe new) schema.
            self.vcenter = vcenter or make_vcenter(settings, self.db)
            self.app = Stagekeeper(
                env=event_store_env(self.db, timeout=settings.unavailable_seconds),
                vcenter=self.vcenter,
                clock=self.clock,
                unavailable_seconds=settings.unavailable_seconds,
            )
            self.store = open_read_store(self.db, timeout=settings.unavailable_seconds)
            self.projections = projections(self.app)
            install(self.store, self.projections, [PROCESS_NAME])
        self.projection_follower = ProjectionFollower(self.app, self.store, self.projections)
        self.leadership = Leadership(
            acquire=lambda: self.store.try_lock(PROCESS_NAME), holds=lambda: self.store.holds_lock(PROCESS_NAME)
        )
        # The process manager acts only while it can prove it leads: before each event, and
        # before each vCenter call of a job (a long job may outlive the lock connection).
        self.process = DeploymentProcess(
            self.app, leader_only(self.vcenter, self.leadership), settings.vcenter_parallel_tasks
        )
        self.process_follower = ProcessFollower(self.app, self.store, PROCESS_NAME, TOPICS, self._act_as_leader)
        self.projection_thread = FollowerThread(
            "projections", [self.projection_follower], settings.poll_seconds, debounce=PROJECTION_DEBOUNCE
        )
        self.process_thread = FollowerThread(
            "process-manager",
            [self.process_follower],
            settings.poll_seconds,
            leadership=self.leadership,
        )
        self.read_models = ReadModels(self.store, wake=self.projection_thread.wake)
        self.audit = AuditQueries(self.store)
        self.app.on_saved(self.projection_thread.wake)
        self.app.on_saved(self._wake_process_manager)
        # Leases (scheduler, leader only) and webhook delivery (own lock, own thread): adapters/lease_workers.py.
        self.lease_workers = LeaseWorkers(self)
        self._started = False

    def _act_as_leader(self, event: object) -> None:
        self.leadership.verify()
        self.process.handle(event)

    def _wake_process_manager(self, position: int, topics: Sequence[str]) -> None:
        if not PROCESS_TOPICS.isdisjoint(topics):
            self.process_thread.wake()

    def ensure_admin(self) -> str | None:
        """Create the local admin on first start. Returns a generated password to show once."""
        generated = None
        password = self.settings.admin_password
        if self.directory is not None:
            # With a directory, the local admin is a break-glass account: only with a password set.
            if password is not None:
                self.app.ensure_local_account(ADMIN, password)
            return None
        if password is None and self.app.local_account(ADMIN) is None:
            password = generated = new_password()
        if password is not None:
            self.app.ensure_local_account(ADMIN, password)
        return generated

    def start_workers(self, projections: bool = True, process_manager: bool = True) -> None:
        if self._started:
            return
        if projections:
            self.projection_thread.start()
        if process_manager:
            self.process_thread.start()
            self.lease_workers.start()
        self._started = True

    def catch_up(self) -> None:
        """Run every follower once in this thread (tests and CLI tools)."""
        self.projection_follower.catch_up()
        self.process_follower.catch_up()
        self.projection_follower.catch_up()

    def close(self) -> None:
        self.projection_thread.stop()
        self.process_thread.stop()
        self.lease_workers.stop()
        self.store.close()
        self.app.close()
        self.vcenter.close()


def print_generated_password(password: str) -> None:
    print(
        "\n  Stagekeeper created the local administrator.\n"
        f"    user: {ADMIN}\n    password: {password}\n"
        "  It is shown only this once and stored hashed. Set STAGEKEEPER_ADMIN_PASSWORD to choose it.\n",
        file=sys.stderr,
        flush=True,
    )
