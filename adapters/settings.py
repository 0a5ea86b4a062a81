"""Settings: every STAGEKEEPER_* environment variable is parsed here, once, by pydantic-settings.

Booleans read one way everywhere (on/off, yes/no, true/false, 1/0, any case), numbers have bounds,
and a value that cannot be used raises `SettingsError` naming the variable, in one line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from psycopg.conninfo import make_conninfo
from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from domain.errors import ValidationError as RuleError
from domain.webhooks import check_url

DEFAULT_DATABASE_URL = "sqlite:///./stagekeeper.db"
PREFIX = "STAGEKEEPER_"
_TRUE = frozenset({"on", "yes", "true", "1"})
_FALSE = frozenset({"off", "no", "false", "0"})


class SettingsError(ValueError):
    """A setting has a value Stagekeeper cannot use; the message names the variable."""


def _flag(value: object) -> object:
    # Pydantic alone also takes "t", "y", "f", "n"; one documented spelling set is easier to audit.
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"must be on/off, yes/no, true/false or 1/0, not {value!r}")


Flag = Annotated[bool, BeforeValidator(_flag)]


class Settings(BaseSettings):
    """What one Stagekeeper process is configured with. Field `name` is `STAGEKEEPER_NAME`
    (except `run_workers`: `STAGEKEEPER_SERVE_WORKERS`)."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_ignore_empty=True, frozen=True, extra="forbid", populate_by_name=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    admin_password: str | None = None
    vcenter_driver: Literal["simulated", "pyvmomi"] = "simulated"
    vcenter_url: str | None = None
    vcenter_user: str | None = None
    vcenter_password: str | None = None
    vcenter_ca_bundle: str | None = None
    vcenter_verify_tls: Flag = True
    vcenter_parallel_tasks: Annotated[int, Field(ge=1, le=64)] = 8
    vcenter_task_timeout: Annotated[float, Field(ge=1.0, le=86400.0)] = 600.0
    vcenter_default_network: str = "VM Network"
    # Free space (percent of capacity) placement keeps on a datastore it puts a machine's disks on.
    placement_datastore_margin_percent: Annotated[int, Field(ge=0, le=90)] = 10
    simulator_state: str | None = None
    simulator_task_seconds: Annotated[float, Field(ge=0.0, le=60.0)] = 0.0
    read_wait_seconds: Annotated[float, Field(ge=0.0, le=300.0)] = 5.0
    poll_seconds: Annotated[float, Field(ge=0.01, le=60.0)] = 0.2
    # sys.setswitchinterval of `serve` and `worker` processes (adapters/interpreter.py).
    switch_interval_ms: Annotated[float, Field(ge=0.1, le=100.0)] = 5.0
    credential_cache_seconds: Annotated[float, Field(ge=0.0, le=3600.0)] = 60.0
    run_workers: Annotated[Flag, Field(validation_alias=PREFIX + "SERVE_WORKERS")] = True
    ldap_url: str | None = None
    ldap_bind_dn: str | None = None
    ldap_bind_password: str | None = None
    ldap_user_base: str | None = None
    ldap_user_filter: str = "(uid={username})"
    ldap_group_base: str | None = None
    ldap_admin_group: str | None = None
    ldap_start_tls: Flag = False
    ldap_ca_file: str | None = None
    # Concurrent writes of a process share one PostgreSQL transaction (adapters/eventstore.py);
    # off: one transaction per write, the library's way (for comparison).
    group_commit: Flag = True
    # Bound on any request while the database is unreachable (then 503).
    unavailable_seconds: Annotated[float, Field(ge=0.1, le=300.0)] = 5.0
    max_body_bytes: Annotated[int, Field(ge=1024, le=1_073_741_824)] = 1_048_576
    max_streams_per_caller: Annotated[int, Field(ge=1, le=10_000)] = 20
    # A worker waiting this long to lead the process manager says so on /healthz.
    leadership_wait_warning_seconds: Annotated[float, Field(ge=0.1, le=86400.0)] = 60.0
    session_idle_minutes: Annotated[int, Field(ge=1, le=10_080)] = 30
    # Unset: the web console generates one and keeps it beside the database / in the database.
    session_secret: str | None = None
    webmks_port: Annotated[int, Field(ge=1, le=65535)] = 443
    # Local users: this many wrong passwords within the window lock the account for the lock time.
    lockout_failures: Annotated[int, Field(ge=1, le=1000)] = 5
    lockout_window_minutes: Annotated[float, Field(gt=0, le=10_080)] = 15.0
    lockout_minutes: Annotated[float, Field(gt=0, le=10_080)] = 15.0
    # Logs: readable text, or one JSON object per line (for a log pipeline).
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Audit streaming to a SIEM (adapters/siem.py): RFC 5424 syslog over TCP/TLS and/or JSON lines.
    siem_syslog_address: str | None = None
    siem_syslog_tls: Flag = False
    siem_syslog_ca_file: str | None = None
    siem_webhook_url: str | None = None
    siem_webhook_secret: str | None = None
    # "host:port": Prometheus metrics also served there, without authentication (a scrape network);
    # /metrics on the API always answers administrators and their tokens.
    metrics_address: str | None = None
    # Resource usage (adapters/usage.py): collector interval, and how long 5-minute / hourly points stay.
    usage_interval_seconds: Annotated[float, Field(ge=5.0, le=86400.0)] = 300.0
    usage_fine_days: Annotated[int, Field(ge=1, le=90)] = 7
    usage_coarse_days: Annotated[int, Field(ge=7, le=3660)] = 365
    # Archive tiers, hot to cold, comma-separated: a datastore name (e.g. LocalDS_1) or file:<directory>.
    archive_tiers: str = "LocalDS_1"
    # An archive moves one tier colder every this many days (0: never by age).
    archive_move_after_days: Annotated[int, Field(ge=0, le=36500)] = 30
    # Default retention of archives per source stage, e.g. "int=30,test=90" (days; a stage not named: kept).
    archive_retention: str = ""
    # The media library's datastore (vcsim's default names) and the largest ISO it takes (1 MiB-64 GiB).
    media_datacenter: str = "DC0"
    media_datastore: str = "LocalDS_0"
    media_max_bytes: Annotated[int, Field(ge=1_048_576, le=68_719_476_736)] = 17_179_869_184
    # Drift detection: how often the leader compares vCenter with the history (0: never on a schedule).
    drift_interval_seconds: Annotated[float, Field(ge=0.0, le=86400.0)] = 300.0
    # OpenID Connect single sign-on for the console (api/ui/oidc.py); on when the issuer is set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_groups_claim: str = "groups"
    # Comma-separated provider group names; empty: anyone the provider authenticates may sign in.
    oidc_allowed_groups: str = ""
    oidc_admin_group: str | None = None
    # A group every user signed in through the provider is in (grants give it its roles).
    oidc_default_group: str | None = None
    # The console's external address as the provider redirects to it; unset: the request's own.
    oidc_redirect_base_url: str | None = None
    oidc_provider_name: str = "single sign-on"
    # Leases: how often the scheduler looks for leases to warn of or expire.
    lease_tick_seconds: Annotated[float, Field(ge=0.01, le=3600.0)] = 30.0
    # A webhook told of every notification kind of every service (signed with the secret).
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_timeout_seconds: Annotated[float, Field(ge=0.1, le=60.0)] = 5.0
    webhook_max_attempts: Annotated[int, Field(ge=1, le=50)] = 8
    # Service export files: an HMAC-SHA256 key (at least 32 characters) that seals exports and, when
    # set on an importing instance, is required on every file it imports (domain/portability.py).
    export_key: Annotated[str | None, Field(min_length=32, max_length=1024)] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `Settings(...)` takes only its arguments: the environment is read explicitly through
        # `from_env(os.environ)`, so tests building settings are not changed by the caller's shell.
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Settings from STAGEKEEPER_* variables in `env`; raises SettingsError naming the variable."""
        values = _MappingSource(cls, env)()
        try:
            return cls(**values)
        except ValidationError as error:
            raise SettingsError(_describe(error, values)) from None

    @field_validator("metrics_address")
    @classmethod
    def _parse_metrics_address(cls, value: str | None) -> str | None:
        if value is not None:
            metrics_bind(value)
        return value

    @field_validator("siem_syslog_address")
    @classmethod
    def _parse_siem_address(cls, value: str | None) -> str | None:
        if value is not None:
            metrics_bind(value)
        return value

    @field_validator("siem_webhook_url")
    @classmethod
    def _parse_siem_url(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith(("http://", "https://")) or len(value) > 2048):
            raise ValueError(f"must be an http:// or https:// URL of at most 2048 characters, not {value[:80]!r}")
        return value

    @field_validator("database_url")
    @classmethod
    def _parse_database_url(cls, url: str) -> str:
        database(url)  # fail early on a bad URL
        return url

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        if self.vcenter_driver == "pyvmomi":
            missing = [n for n in ("vcenter_url", "vcenter_user", "vcenter_password") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"{PREFIX}VCENTER_DRIVER=pyvmomi needs {_names(missing)}")
        if self.ldap_url:
            needed = ("ldap_bind_dn", "ldap_bind_password", "ldap_user_base", "ldap_group_base")
            missing = [n for n in needed if getattr(self, n) is None]
            if missing:
                raise ValueError(f"{PREFIX}LDAP_URL needs {_names(missing)}")
            if "{username}" not in self.ldap_user_filter:
                raise ValueError(f"{PREFIX}LDAP_USER_FILTER must contain {{username}}")
        if self.webhook_url is not None:
            check_webhook_settings(self.webhook_url, self.webhook_secret)
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer is None:
            return self
        missing = [n for n in ("oidc_client_id", "oidc_client_secret") if getattr(self, n) is None]
        if missing:
            raise ValueError(f"{PREFIX}OIDC_ISSUER needs {_names(missing)}")
        for name in ("oidc_issuer", "oidc_redirect_base_url"):
            value = getattr(self, name)
            if value is not None and not _web_address(value):
                raise ValueError(
                    f"{variable(name)} must be an https:// URL (http:// only on 127.0.0.1 or localhost), "
                    f"not {value[:80]!r}"
                )
        return self

    @property
    def oidc_allowed(self) -> frozenset[str]:
        return frozenset(g.strip() for g in self.oidc_allowed_groups.split(",") if g.strip())


def _web_address(value: str) -> bool:
    parts = urlsplit(value)
    if len(value) > 2048 or not parts.hostname or parts.query or parts.fragment:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))


def metrics_bind(value: str) -> tuple[str, int]:
    """("host", port) of STAGEKEEPER_METRICS_ADDRESS ("127.0.0.1:9464", "[::1]:9464", ":9464")."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535 or len(value) > 255:
        raise ValueError(f"must be host:port with a port from 1 to 65535, not {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - ":port" asks for every interface


def variable(field: str) -> str:
    """The environment variable a Settings field is read from."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else PREFIX + field.upper()


def _names(fields: list[str]) -> str:
    return ", ".join(variable(f) for f in fields)


# Settings whose values never appear in an error message.
_SECRET = frozenset(
    {
        "database_url", "admin_password", "vcenter_password", "ldap_bind_password", "session_secret",
        "webhook_secret", "export_key", "siem_webhook_secret", "oidc_client_secret",
    }
)  # fmt: skip


def check_webhook_settings(url: str, secret: str | None) -> None:
    try:
        check_url(url, "url")
    except RuleError as error:
        raise ValueError(f"{PREFIX}WEBHOOK_URL: {error}") from None
    if not secret or len(secret) < 16:
        raise ValueError(f"{PREFIX}WEBHOOK_URL needs {PREFIX}WEBHOOK_SECRET (at least 16 characters)")


def _describe(error: ValidationError, values: Mapping[str, Any]) -> str:
    first = error.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    if not first["loc"] or message.startswith(PREFIX):
        return message  # the message already names its variables
    key = str(first["loc"][0])
    field = next((f for f in Settings.model_fields if variable(f).lower() == key.lower()), key)
    if key in values and field not in _SECRET and "not " not in message:
        message = f"{message}, not {values[key]!r}"
    return f"{variable(field) if field in Settings.model_fields else key.upper()}: {message}"


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._env.items() if k.upper().startswith(PREFIX) and v != ""}

    def prepare_field_value(self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool) -> Any:
        return value  # every setting is a plain string; nothing is decoded as JSON


@dataclass(frozen=True)
class Database:
    kind: str  # "memory" | "sqlite" | "postgres"
    path: str = ""  # sqlite file (or ":memory:")
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    schema: str = ""

    @property
    def conninfo(self) -> str:
        # make_conninfo quotes what needs quoting (a password with a space or a quote).
        return make_conninfo(
            host=self.host, port=self.port, dbname=self.dbname, user=self.user or None, password=self.password or None
        )


# Schema names go into search_path and CREATE SCHEMA: plain identifiers only.
_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def database(url: str) -> Database:
    """Parse STAGEKEEPER_DATABASE_URL: sqlite:///relative/or//absolute.db or postgresql://user@host:port/db."""
    parsed = urlsplit(url)
    if url == "memory://":
        # Events in process memory, read models in an in-memory SQLite: nothing survives a restart.
        return Database(kind="memory", path=":memory:")
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise SettingsError("STAGEKEEPER_DATABASE_URL: sqlite URLs look like sqlite:///./stagekeeper.db")
        if path != ":memory:":
            path = str(Path(path).expanduser())
        return Database(kind="sqlite", path=path)
    if parsed.scheme in ("postgresql", "postgres"):
        dbname = parsed.path.lstrip("/")
        if not parsed.hostname or not dbname:
            raise SettingsError("STAGEKEEPER_DATABASE_URL: postgres URLs look like postgresql://user@host:5432/db")
        query = dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p)
        schema = query.get("schema", "")
        if schema and not _SCHEMA.fullmatch(schema):
            raise SettingsError("STAGEKEEPER_DATABASE_URL: ?schema= must be letters, digits and _ (not first a digit)")
        try:
            port = parsed.port or 5432
        except ValueError:
            raise SettingsError("STAGEKEEPER_DATABASE_URL: the port must be a number from 1 to 65535") from None
        return Database(
            kind="postgres",
            host=parsed.hostname,
            port=port,
            user=unquote(parsed.username or ""),
            password=unquote(parsed.password or ""),
            dbname=dbname,
            schema=schema,
        )
    raise SettingsError(
        "STAGEKEEPER_DATABASE_URL must be sqlite:///<file>, postgresql://user@host:port/db or memory://"
    )


# Recently used aggregates stay in memory; "fast-forward" reads only the events stored since,
# so other processes' writes are still seen, and a stale copy still fails at save (versions).
_CACHE = {"AGGREGATE_CACHE_MAXSIZE": "2000", "AGGREGATE_CACHE_FASTFORWARD": "y"}


def event_store_env(
    db: Database, create_tables: bool = True, timeout: float = 5.0, group_commit: bool = True
) -> dict[str, str]:
    """The eventsourcing library's environment for this database. During an outage a request
    answers 503 within `timeout`: one call waits at most half of it for a pooled connection
    (POSTGRES_CONNECT_TIMEOUT is the pool's wait) or a lock, in whole seconds as the library
    reads them, which leaves time for a second call (e.g. checking an interrupted commit)."""
    seconds = str(max(1, round(timeout / 2)))
    create = "y" if create_tables else "n"
    if db.kind == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if db.kind == "sqlite":
        return {
            **_CACHE,
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": db.path,
            "SQLITE_LOCK_TIMEOUT": "10",
            "CREATE_TABLE": create,
        }
    env = {
        **_CACHE,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": db.dbname,
        "POSTGRES_HOST": db.host,
        "POSTGRES_PORT": str(db.port),
        "POSTGRES_USER": db.user or "postgres",
        "POSTGRES_PASSWORD": db.password,
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_CONNECT_TIMEOUT": seconds,
        "POSTGRES_LOCK_TIMEOUT": seconds,
        "POSTGRES_PRE_PING": "y",
        "CREATE_TABLE": create,
    }
    if db.schema:
        env["POSTGRES_SCHEMA"] = db.schema
    if group_commit:
        env["APPLICATION_RECORDER_TOPIC"] = "adapters.eventstore:GroupCommitRecorder"
    return env
