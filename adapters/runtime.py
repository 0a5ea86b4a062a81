"""Wires settings to the application, read store, drivers and workers (the composition root)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import cast

import psycopg
from psycopg import sql

from adapters import collector
from adapters.archives import (
    ARCHIVE_PROCESS_NAME,
    ArchiveScheduler,
    archive_retention,
    archive_tiers,
    file_tiers,
    make_archive_storage,
)
from adapters.clock import SystemClock
from adapters.drift_worker import DriftWorker
from adapters.ldap_directory import LdapDirectory, LdapSettings
from adapters.lease_workers import LeaseWorkers
from adapters.metrics import InstrumentedDirectory, InstrumentedDriver, Lag, Metrics
from adapters.pgcheck import install_quiet_check
from adapters.pglock import advisory_key
from adapters.probes import NetworkProber
from adapters.readstore import open_read_store
from adapters.settings import Database, Settings, SettingsError, database, event_store_env, metrics_bind
from adapters.siem import AuditStreamer, Sink, SyslogSink, WebhookSink
from adapters.simulator_state import FileState, InventoryState, PostgresState
from adapters.usage import Usage
from adapters.vcenter.pyvmomi.driver import PyVmomiDriver
from adapters.vcenter.pyvmomi.session import ConnectionSettings
from adapters.vcenter.simulated import SimulatedVCenter
from adapters.workers import FollowerThread, Leadership, leader_only
from domain.credentials import new_password
from domain.local_users import LockoutPolicy
from domain.ports import Clock, Directory, VCenterDriver
from domain.processes.approvals import ApprovalsTick
from domain.processes.archives import TOPICS as ARCHIVE_TOPICS
from domain.processes.archives import ArchiveProcess
from domain.processes.deployments import TOPICS, DeploymentProcess
from domain.processes.drift import DriftCheck
from domain.stagekeeper import Stagekeeper
from projections.audit import AuditProjection
from projections.audit_queries import AuditQueries
from projections.base import Projection
from projections.configurations import ConfigurationsProjection
from projections.deployments import DeploymentsProjection
from projections.follower import ProcessFollower, ProjectionFollower, install
from projections.grants import GrantsProjection
from projections.media import MediaProjection
from projections.metrics import Retention
from projections.pipeline import ReaderSpec
from projections.queries import ReadModels
from projections.services import ServicesProjection
from projections.store import ReadStore
from projections.tokens import TokensProjection
from projections.usage import AllocationsProjection
from projections.users import UsersProjection

log = logging.getLogger("stagekeeper")

PROCESS_NAME = "process:deployments"
PROCESS_TOPICS = frozenset(TOPICS)
# Gathering a few milliseconds of events per projection transaction keeps the projection
# thread from competing with every single command for the interpreter. Under a steady stream of
# commands the wait grows with the events of the pass before (adapters/workers.py), up to
# PROJECTION_MAX_DEBOUNCE: each pass reads positions, the log and the audit chain's head and
# writes every read model's tracking, about a dozen statements whatever its size, so a stream of
# 600 commands/s applied 5 at a time spent about as much CPU on those as on the events. A reader
# waiting for its own write (min_position) does not wait for the debounce.
PROJECTION_DEBOUNCE = 0.005
PROJECTION_MAX_DEBOUNCE = 0.025
ADMIN = "admin"


def projections(app: Stagekeeper) -> list[Projection]:
    return [
        ServicesProjection(),
        ConfigurationsProjection(),
        DeploymentsProjection(lambda deployment_id, version: app.deployment(deployment_id, version=version)),
        AuditProjection(),
        GrantsProjection(),
        TokensProjection(),
        UsersProjection(),
        AllocationsProjection(lambda deployment_id, version: app.deployment(deployment_id, version=version)),
        MediaProjection(),
        *LeaseWorkers.projections(),
    ]


def audit_streamers(settings: Settings, store: ReadStore) -> list[AuditStreamer]:
    """One streamer per SIEM sink the settings name (none by default)."""
    sinks: list[Sink] = []
    if settings.siem_syslog_address:
        host, port = metrics_bind(settings.siem_syslog_address)
        sinks.append(SyslogSink(host, port, tls=settings.siem_syslog_tls, ca_file=settings.siem_syslog_ca_file))
    if settings.siem_webhook_url:
        sinks.append(WebhookSink(settings.siem_webhook_url, settings.siem_webhook_secret))
    return [AuditStreamer(store, sink, settings.poll_seconds) for sink in sinks]


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
        self.metrics = Metrics()
        self.directory = directory if directory is not None else make_directory(settings)
        if self.directory is not None:
            self.directory = cast(Directory, InstrumentedDirectory(self.directory, self.metrics))
        with schema_lock(self.db):
            # Inside the lock: the simulated inventory's table lives in the (maybe new) schema.
            self.vcenter = vcenter or make_vcenter(settings, self.db)
            self.app = Stagekeeper(
                env=event_store_env(self.db, timeout=settings.unavailable_seconds, group_commit=settings.group_commit),
                vcenter=cast(VCenterDriver, InstrumentedDriver(self.vcenter, self.metrics)),
                clock=self.clock,
                unavailable_seconds=settings.unavailable_seconds,
            )
            self.app.placement_margin_percent = settings.placement_datastore_margin_percent
            # A pooled connection is pinged only when its socket is not quiet (adapters/pgcheck.py).
            for recorder in (self.app.recorder, getattr(self.app.snapshots, "recorder", None)):
                install_quiet_check(getattr(recorder, "wrapped", recorder))
            self.store = open_read_store(self.db, timeout=settings.unavailable_seconds)
            self.projections = projections(self.app)
            install(self.store, self.projections, [PROCESS_NAME, ARCHIVE_PROCESS_NAME])
            self.usage = Usage(
                self.vcenter,
                self.store,
                self.clock,
                settings.usage_interval_seconds,
                Retention(settings.usage_fine_days, settings.usage_coarse_days),
                lambda: self.leadership.leader,
            )
        self.projection_follower = ProjectionFollower(
            self.app, self.store, self.projections, reader=ReaderSpec(self.app.name, dict(self.app.env))
        )
        self.leadership = Leadership(
            acquire=lambda: self.store.try_lock(PROCESS_NAME), holds=lambda: self.store.holds_lock(PROCESS_NAME)
        )
        # The process manager acts only while it can prove it leads: before each event, and
        # before each vCenter call of a job (a long job may outlive the lock connection).
        self.process = DeploymentProcess(
            self.app, leader_only(self.app.vcenter, self.leadership), settings.vcenter_parallel_tasks, NetworkProber()
        )
        self.process.quiet = collector.paused  # no cycle collection while a deploy's pass runs
        self.process_follower = ProcessFollower(self.app, self.store, PROCESS_NAME, TOPICS, self._act_as_leader)
        self.projection_thread = FollowerThread(
            "projections",
            [self.projection_follower],
            settings.poll_seconds,
            debounce=PROJECTION_DEBOUNCE,
            max_debounce=PROJECTION_MAX_DEBOUNCE,
        )
        self.process_thread = FollowerThread(
            "process-manager",
            [self.process_follower],
            settings.poll_seconds,
            leadership=self.leadership,
        )
        # Approval requests and scheduled promotions, on the process manager's thread (leader only).
        self.approvals_tick = ApprovalsTick(self.app)
        self.process_thread.followers.append(self.approvals_tick)
        # Archives: their own process manager, run by the same leader thread (domain/processes/archives.py).
        self.app.archive_tiers = archive_tiers(settings.archive_tiers)
        self.app.archive_retention = archive_retention(settings.archive_retention)
        self.archive_storage = make_archive_storage(self.vcenter)
        self.file_tiers = file_tiers(self.app.archive_tiers)
        self.archive_process = ArchiveProcess(
            self.app,
            leader_only(self.vcenter, self.leadership),
            leader_only(self.archive_storage, self.leadership),
            self.file_tiers,
            settings.vcenter_parallel_tasks,
        )
        self.archive_follower = ProcessFollower(
            self.app, self.store, ARCHIVE_PROCESS_NAME, ARCHIVE_TOPICS, self._act_on_archives
        )
        self.process_thread.followers.append(self.archive_follower)
        # Moves by age and retention: checked once a minute of the Clock's time, by the leader only.
        self.archive_scheduler = ArchiveScheduler(
            self.app, self.clock, settings.archive_move_after_days, timedelta(minutes=1)
        )
        self.process_thread.followers.append(self.archive_scheduler)
        self.app.on_saved(self._wake_archive_process)
        self.read_models = ReadModels(self.store, wake=self.projection_thread.hurry)
        self.audit = AuditQueries(self.store)
        self.app.on_saved(self.projection_thread.wake)
        self.app.on_saved(self._wake_process_manager)
        self.app.on_saved(lambda _position, topics: self.metrics.count_events(topics))
        self.app.lockout_policy = LockoutPolicy(
            settings.lockout_failures, settings.lockout_window_minutes * 60, settings.lockout_minutes * 60
        )
        self.app.export_key = settings.export_key.encode() if settings.export_key else None
        self.metrics.watch(Lag(self.app.head, self.projection_follower.positions, self.process_follower.position))
        self.siem = audit_streamers(settings, self.store)
        # Leases (scheduler, leader only) and webhook delivery (own lock, own thread): adapters/lease_workers.py.
        self.lease_workers = LeaseWorkers(self)
        self._started = False
        self.drift_check = DriftCheck(
            self.app, leader_only(self.vcenter, self.leadership), self.clock, self.read_models.deployed_ids
        )
        self.drift_worker = DriftWorker(
            self.drift_check, self.leadership, self.clock, settings.drift_interval_seconds,
            verify=lambda: self.process.verification.recheck_all(self.read_models.verifying_ids()),
        )  # fmt: skip

    def _act_as_leader(self, event: object) -> None:
        self.leadership.verify()
        kind = type(event).__qualname__
        started = time.perf_counter()
        try:
            self.process.handle(event)
        except Exception:
            self.metrics.process_failures.labels(kind).inc()
            raise
        finally:
            self.metrics.process_steps.labels(kind).observe(time.perf_counter() - started)

    def _act_on_archives(self, event: object) -> None:
        self.leadership.verify()
        self.archive_process.handle(event)

    def _wake_archive_process(self, position: int, topics: Sequence[str]) -> None:
        if not frozenset(ARCHIVE_TOPICS).isdisjoint(topics):
            self.process_thread.wake()

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
            self.usage.start()
            self.drift_worker.start()
            self.lease_workers.start()
        if projections:
            for streamer in self.siem:
                streamer.start()
        self._started = True

    def catch_up(self) -> None:
        """Run every follower once in this thread (tests and CLI tools)."""
        self.projection_follower.catch_up()
        self.process_follower.catch_up()
        self.approvals_tick.sweep()
        self.archive_follower.catch_up()
        self.projection_follower.catch_up()

    def close(self) -> None:
        self.projection_thread.stop()
        self.process_thread.stop()
        for streamer in self.siem:
            streamer.stop()
        self.usage.stop()
        self.drift_worker.stop()
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
